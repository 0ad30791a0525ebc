"""Group commit: concurrent writes of one collection share one ``bulk_write``.

A writer queues its operations and waits. The writer that finds no batch under way writes
every operation queued so far in one ``bulk_write``; the ones queued meanwhile wait for it
and go together in the next batch. A lone writer writes at once, so nothing waits on a
timer; under load a burst of writes costs a few store commands instead of one per writer.
Each writer returns only once its own operations are written, and raises what their
batch's write raised, so a caller that acks a message after its write keeps doing so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

from pymongo import InsertOne, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection

from vcs_shared.store import Document

Operation: TypeAlias = InsertOne[Document] | UpdateOne
"""What a batch holds: inserts (new documents) or updates; one kind per collection keeps a
batch one store command (a ``bulk_write`` mixing kinds is one command per kind)."""


class BatchNotWritten(RuntimeError):
    """The batch this writer's operations were in was not written (its writer was
    interrupted); the caller retries as after any failed write."""


@dataclass(frozen=True, slots=True)
class Batch:
    """What the store answered for a whole batch: a writer learns whether every update in it
    matched its filter, not which did (one ``bulk_write`` answers a total)."""

    updates: int
    matched: int

    @property
    def all_matched(self) -> bool:
        return self.matched == self.updates


class GroupCommit:
    """Batches the writes of concurrent callers to ``collection`` (see the module docstring).

    ``ordered``: each batch is an ordered ``bulk_write``, so a caller's operations run in the
    order it gave them (one after another, even if other callers' operations come between).
    Unordered batches may run them in any order and go on past a failed operation.
    """

    def __init__(self, collection: AsyncCollection[Document], *, ordered: bool) -> None:
        self._collection = collection
        self._ordered = ordered
        self._queued: list[tuple[Operation, asyncio.Future[Batch]]] = []
        """Operations waiting for the next batch, each with the future its writer awaits."""
        self._writing = asyncio.Lock()
        """Held while a batch is written."""

    async def write(self, operations: Sequence[Operation]) -> Batch:
        """Writes ``operations`` in the next batch; returns once that batch is written, with
        what the store answered for it."""
        written: asyncio.Future[Batch] = asyncio.get_running_loop().create_future()
        self._queued.extend((operation, written) for operation in operations)
        async with self._writing:
            if not written.done():
                batch, self._queued = self._queued, []
                try:
                    result = await self._collection.bulk_write(
                        [operation for operation, _ in batch], ordered=self._ordered
                    )
                except BaseException as exc:
                    failure = exc if isinstance(exc, Exception) else BatchNotWritten(repr(exc))
                    for _, waiter in batch:  # the writer's own error is raised right here
                        if waiter is not written and not waiter.done():
                            waiter.set_exception(failure)
                    raise
                answer = Batch(
                    updates=sum(isinstance(operation, UpdateOne) for operation, _ in batch),
                    matched=result.matched_count,
                )
                for _, waiter in batch:
                    if not waiter.done():
                        waiter.set_result(answer)
        return await written
