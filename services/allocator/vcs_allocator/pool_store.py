"""The pools, versioned: a reload is all or nothing, one at a time, and never moves a room by
surprise (issue 11.8).

The embedded store makes only single-document writes atomic, so a reload cannot
rewrite many room documents "at once". Instead every version of a pool is a set
of room documents of its own, written before anyone can see them, and one
document, the **directory** (``pool_directory``, ``_id`` ``"pools"``), says which
version of each pool is current and which pool holds each Meeting ID:

* ``rooms`` — one document per room per pool version: ``generation``
  (``<pool>@<random>``, its own single-field index: a pool's current rooms are
  one indexed equality query), ``meeting_id``, ``pool``, ``capacity``,
  ``passcode``, ``join_url``, ``active``.
* ``pool_directory`` — ``current`` (pool -> generation), ``previous`` (the
  generation each one replaced, kept one reload longer for readers that read
  the directory just before a switch) and ``revision``. It stays small: every
  allocation reads it. Which pool holds a Meeting ID is read from the current
  rooms when a reload is planned; the switch's compare-and-set makes a second
  reload re-plan on top of the first, so a Meeting ID stays in one pool.

A reload reads the directory, writes the new versions of the pools it changes,
then switches the directory with a compare-and-set on ``revision``: the only
write that makes anything visible, so a failure before it leaves the old pools
as they were (its unseen documents are deleted, or left to the next reload),
and two reloads racing cannot interleave: the second's switch fails, it
re-reads and applies its file again on top of the first (at most
:data:`SWITCH_ATTEMPTS` times), so the outcome is one file after the other.

A file that puts a Meeting ID held by another pool into its own is refused
(:class:`PoolMovesRefused`) unless that row names the pool it moves from
(``moved_from``); the moved room leaves the old pool's current version in the
same switch.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from vcs_allocator.domain import PoolEntry, Room
from vcs_shared.credentials import CredentialsSealer
from vcs_shared.store import Document

DIRECTORY_ID = "pools"
SWITCH_ATTEMPTS = 5
DIRECTORY_MAX_AGE = 2.0
"""Seconds an allocation may use a directory read before (see :meth:`PoolStore.rooms`)."""


@dataclass(frozen=True, slots=True)
class PoolChange:
    """What loading a pool file changed."""

    pools: tuple[str, ...]
    loaded: int
    deactivated: int
    moved: tuple[str, ...] = ()
    revision: int = 0


@dataclass(frozen=True, slots=True)
class Move:
    meeting_id: str
    from_pool: str
    to_pool: str


class PoolMovesRefused(Exception):
    """The file puts Meeting IDs of other pools into its own without saying so."""

    def __init__(self, moves: Sequence[Move]) -> None:
        self.moves = tuple(moves)
        listed = ", ".join(f"{m.meeting_id} ({m.from_pool} -> {m.to_pool})" for m in self.moves)
        super().__init__(
            f"nothing was loaded: the file moves Meeting IDs from another pool: {listed}; "
            "to move one, give its row moved_from=<the pool it leaves>"
        )


class PoolsNotYours(Exception):
    """The file moves rooms out of pools the caller may not change."""

    def __init__(self, pools: Sequence[str]) -> None:
        super().__init__(", ".join(pools))
        self.pools = tuple(pools)


class PoolReloadConflict(Exception):
    """Other reloads kept switching the pools first; nothing of this one was loaded."""


@dataclass(frozen=True, slots=True)
class Directory:
    """Which version of each pool is current, and which pool holds each Meeting ID."""

    current: dict[str, str] = field(default_factory=dict)
    previous: dict[str, str] = field(default_factory=dict)
    revision: int = 0


class PoolStore:
    """The versioned pools of one allocator database."""

    def __init__(
        self,
        db: AsyncDatabase[Document],
        sealer: CredentialsSealer | None = None,
        *,
        directory_max_age: float = DIRECTORY_MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rooms_collection = db["rooms"]
        self.directory_collection = db["pool_directory"]
        self._sealer = sealer
        """Only to seal the clear passcodes of rooms stored by an earlier version."""
        self._generations: dict[str, list[Room]] = {}
        """The rooms of each current pool version read so far (see :meth:`_rooms_of`)."""
        self._directory_max_age = directory_max_age
        self._clock = clock
        self._recent: tuple[Directory, float] | None = None
        """The directory an allocation read last, and when that read started (None: not
        read yet, or this process reloaded since)."""
        self._reading: asyncio.Future[Directory] | None = None
        """The directory read under way for allocations, which the others that find the
        directory too old meanwhile wait for rather than each reading it."""
        self._reloads = 0
        """How many times this process forgot the directory (its reloads): a read started
        before one is not kept as the recent directory."""

    async def ensure_indexes(self) -> None:
        await self.rooms_collection.create_index("generation")
        await self._adopt_unversioned()

    async def _adopt_unversioned(self) -> None:
        """Rooms stored by a version before pools were versioned (``_id`` = Meeting ID, no
        ``generation``) become each pool's first version, once, so an upgrade keeps them."""
        if await self.directory_collection.find_one({"_id": DIRECTORY_ID}) is not None:
            return
        legacy = [doc async for doc in self.rooms_collection.find({"generation": None})]
        if not legacy:
            return
        if self._sealer is None:
            raise RuntimeError("rooms stored in clear need the credentials keys to be adopted")
        current = {str(doc["pool"]): f"{doc['pool']}@unversioned" for doc in legacy}
        for doc in legacy:
            entry = PoolEntry(
                str(doc["_id"]), doc["capacity"], doc["pool"], doc["passcode"], doc["join_url"]
            )
            room = entry.sealed(self._sealer)
            await self.rooms_collection.update_one(
                {"_id": doc["_id"]},
                {
                    "$set": {
                        "generation": current[str(doc["pool"])],
                        "meeting_id": room.meeting_id,
                        "public_join_url": room.public_join_url,
                        "sealed_credentials": room.sealed_credentials,
                    },
                    "$unset": {"passcode": "", "join_url": ""},
                },
            )
        with contextlib.suppress(DuplicateKeyError):  # another allocator did it first
            await self.directory_collection.insert_one(
                {
                    "_id": DIRECTORY_ID,
                    "current": current,
                    "previous": {},
                    "revision": 1,
                }
            )

    async def directory(self) -> Directory:
        doc = await self.directory_collection.find_one({"_id": DIRECTORY_ID})
        if doc is None:
            return Directory()
        return Directory(
            current=dict(doc.get("current", {})),
            previous=dict(doc.get("previous", {})),
            revision=int(doc.get("revision", 0)),
        )

    async def rooms(self, pools: Sequence[str], *, active_only: bool = True) -> list[Room]:
        """The rooms of the current versions of ``pools``, for an allocation.

        Every allocation asks, so the directory is read at most every ``directory_max_age``
        seconds (2 s) and the rooms of a version once per process (:meth:`_rooms_of`): a
        reload through this process counts at once, one through another process (another
        allocator's admin API) within 2 s. Until then an allocation may still choose from
        the version before, which the reload keeps readable for such readers (``previous``):
        a room the reload made inactive may be assigned in that window, never a slot twice
        (the slots' unique index is per Meeting ID, whatever the pool). Should that version
        be gone already (a second reload), its empty pool is read again with a fresh
        directory rather than taken for a pool without rooms."""
        directory, recent = await self._directory_for_allocation()
        found = await self._rooms_of(directory, pools, active_only=active_only)
        if recent and self._empty_version(directory, pools):
            self._forget_directory()
            directory, _ = await self._directory_for_allocation()
            found = await self._rooms_of(directory, pools, active_only=active_only)
        return found

    def _empty_version(self, directory: Directory, pools: Sequence[str]) -> bool:
        """Whether the version of one of ``pools`` that ``directory`` names has no rooms (a
        version deleted since that directory was read reads as empty)."""
        return any(
            (generation := directory.current.get(pool)) is not None
            and not self._generations.get(generation)
            for pool in pools
        )

    async def _directory_for_allocation(self) -> tuple[Directory, bool]:
        """The directory read at most ``directory_max_age`` seconds ago, and whether it is
        that earlier read (True) rather than one made now.

        When it is too old, one read serves every allocation that asks meanwhile: in a burst
        the 16 allocations under way all found it too old at once, and one allocator read it
        6 times in a 4-second burst of 100 requests where 2 reads keep the same promise."""
        if self._recent is not None:
            directory, read_at = self._recent
            if self._clock() - read_at < self._directory_max_age:
                return directory, True
        reading = self._reading
        if reading is None:
            reading = asyncio.ensure_future(self._read_directory(self._reloads))
            reading.add_done_callback(self._read_done)
            self._reading = reading
        return await asyncio.shield(reading), False

    async def _read_directory(self, reloads: int) -> Directory:
        started = self._clock()
        directory = await self.directory()
        if reloads == self._reloads:  # no reload of this process since the read started
            self._recent = (directory, started)
        return directory

    def _read_done(self, reading: asyncio.Future[Directory]) -> None:
        if self._reading is reading:
            self._reading = None

    def _forget_directory(self) -> None:
        """The next allocation reads the directory afresh, not joining a read already under
        way (it may have started before this process's reload switched it)."""
        self._reloads += 1
        self._recent = None
        self._reading = None

    async def _rooms_of(
        self, directory: Directory, pools: Sequence[str], *, active_only: bool
    ) -> list[Room]:
        """The rooms of the directory's current versions of ``pools``. A version's rooms never
        change once it is current (a reload writes a new version), so each is read once per
        process, on its single-field ``generation`` index, and kept while it is current: an
        allocation then costs the directory read only."""
        current = set(directory.current.values())
        for stale in self._generations.keys() - current:
            del self._generations[stale]
        found: list[Room] = []
        for pool in pools:
            generation = directory.current.get(pool)
            if generation is None:
                continue
            if generation not in self._generations:
                query: Document = {"generation": generation}
                cursor = self.rooms_collection.find(query)
                self._generations[generation] = [room_from_document(doc) async for doc in cursor]
            rooms = self._generations[generation]
            found.extend([room for room in rooms if room.active] if active_only else rooms)
        return found

    async def warm(self) -> None:
        """Reads the rooms of every current pool version in one query, before the process
        takes its first request.

        Otherwise each process reads each pool on its first allocation there, in the middle
        of a burst, where every extra command waits in the store's one queue: three
        allocators started for the bench's 100-request burst read the 7 provinces' rooms 39-44
        times against 13-23 for one. A pool reloaded later is read as before."""
        directory, _ = await self._directory_for_allocation()
        wanted = set(directory.current.values()) - self._generations.keys()
        if not wanted:
            return
        found: dict[str, list[Room]] = {generation: [] for generation in wanted}
        query: Document = {"generation": {"$in": sorted(wanted)}}
        async for doc in self.rooms_collection.find(query):
            found[str(doc["generation"])].append(room_from_document(doc))
        self._generations.update(found)

    async def all_rooms(self, pool: str | None = None) -> list[Room]:
        """Every current room (active or not), by pool, capacity and Meeting ID."""
        directory = await self.directory()
        pools = sorted(directory.current) if pool is None else [pool]
        rooms = await self._rooms_of(directory, pools, active_only=False)
        return sorted(rooms, key=lambda r: (r.pool, r.capacity, r.meeting_id))

    async def room_count(self) -> int:
        directory = await self.directory()
        counts = [
            await self.rooms_collection.count_documents({"generation": generation})
            for generation in directory.current.values()
        ]
        return sum(counts)

    async def replace(
        self, rooms: Sequence[Room], *, may_change: Callable[[str], bool] = lambda _: True
    ) -> PoolChange:
        """Makes the pools named in ``rooms`` equal to it (rooms they no longer list stay,
        inactive, keeping their bookings), all at once or not at all.

        :class:`PoolMovesRefused` for a Meeting ID of another pool not flagged
        ``moved_from``; :class:`PoolsNotYours` when a flagged move leaves a pool
        ``may_change`` refuses; :class:`PoolReloadConflict` when other reloads kept
        winning the switch.
        """
        self._forget_directory()  # the next allocation of this process reads the outcome
        for _ in range(SWITCH_ATTEMPTS):
            directory = await self.directory()
            plan = await self._plan(directory, rooms, may_change)
            written: list[str] = []
            try:
                for generation, documents in plan.documents.items():
                    written.append(generation)
                    if documents:
                        await self.rooms_collection.insert_many(documents, ordered=False)
                switched = await self._switch(directory, plan)
            except BaseException:
                with contextlib.suppress(Exception):  # unseen: harmless if left
                    await self._forget(written)
                raise
            if switched:
                self._forget_directory()
                await self._forget([g for p, g in directory.previous.items() if p in plan.current])
                return replace(plan.change, revision=directory.revision + 1)
            await self._forget(written)
        raise PoolReloadConflict("the pools kept changing under this reload; nothing was loaded")

    async def _plan(
        self, directory: Directory, rooms: Sequence[Room], may_change: Callable[[str], bool]
    ) -> _Plan:
        named = sorted({room.pool for room in rooms})
        everywhere = await self._rooms_of(directory, sorted(directory.current), active_only=False)
        owners = {room.meeting_id: room.pool for room in everywhere}
        unflagged: list[Move] = []
        moves: list[Move] = []
        for room in rooms:
            owner = owners.get(room.meeting_id)
            if owner is None or owner == room.pool:
                continue
            move = Move(room.meeting_id, owner, room.pool)
            (moves if room.moved_from == owner else unflagged).append(move)
        if unflagged:
            raise PoolMovesRefused(unflagged)
        left = sorted({m.from_pool for m in moves} - set(named))
        outside = [pool for pool in left if not may_change(pool)]
        if outside:
            raise PoolsNotYours(outside)
        leaving = {m.meeting_id for m in moves}
        listed = {room.meeting_id for room in rooms}
        stored = await self._rooms_of(directory, [*named, *left], active_only=False)
        kept: dict[str, list[Room]] = {pool: [] for pool in [*named, *left]}
        deactivated = 0
        for room in stored:
            if room.meeting_id in listed or room.meeting_id in leaving:
                continue
            if room.pool in named and room.active:
                deactivated += 1
            kept[room.pool].append(replace(room, active=False) if room.pool in named else room)
        for room in rooms:
            kept[room.pool].append(room)
        current = {pool: f"{pool}@{uuid.uuid4().hex}" for pool in kept}
        documents = {
            current[pool]: [room_to_document(room, current[pool]) for room in pool_rooms]
            for pool, pool_rooms in kept.items()
        }
        change = PoolChange(
            pools=tuple(named),
            loaded=len(rooms),
            deactivated=deactivated,
            moved=tuple(sorted(leaving)),
        )
        return _Plan(current, documents, change)

    async def _switch(self, directory: Directory, plan: _Plan) -> bool:
        """The one write that makes the new versions current (compare-and-set on revision)."""
        fields = {
            "current": {**directory.current, **plan.current},
            "previous": {
                **directory.previous,
                **{p: directory.current[p] for p in plan.current if p in directory.current},
            },
            "revision": directory.revision + 1,
        }
        if directory.revision == 0:
            try:
                await self.directory_collection.insert_one({"_id": DIRECTORY_ID, **fields})
            except DuplicateKeyError:
                return False
            return True
        result = await self.directory_collection.update_one(
            {"_id": DIRECTORY_ID, "revision": directory.revision}, {"$set": fields}
        )
        return result.modified_count == 1

    async def _forget(self, generations: Sequence[str]) -> None:
        for generation in generations:
            await self.rooms_collection.delete_many({"generation": generation})


@dataclass(frozen=True, slots=True)
class _Plan:
    current: dict[str, str]
    documents: dict[str, list[Document]]
    change: PoolChange


def room_to_document(room: Room, generation: str) -> Document:
    return {
        "_id": f"{generation}:{room.meeting_id}",
        "generation": generation,
        "meeting_id": room.meeting_id,
        "capacity": room.capacity,
        "pool": room.pool,
        "public_join_url": room.public_join_url,
        "sealed_credentials": room.sealed_credentials,
        "active": room.active,
        "host": room.host,
    }


def room_from_document(doc: Document) -> Room:
    return Room(
        meeting_id=str(doc.get("meeting_id") or doc["_id"]),  # an unversioned room: its _id
        capacity=doc["capacity"],
        pool=doc["pool"],
        public_join_url=doc["public_join_url"],
        sealed_credentials=doc["sealed_credentials"],
        active=doc["active"],
        host=doc.get("host"),
    )
