"""The notifier's local journal of sent messages: the outcome of a message, on local disk as
soon as it is known, before the store records it.

Between the relay's ``250`` and the store's record of the outcome lies a window in which
the mail is out but the store says nothing: a store frozen there and the notifier killed
(the chaos soak did both) left the request's send claim to run out, and the next notifier
sent the mail again. The journal closes it: every outcome is appended here (flushed and
fsynced) right after the send, so a notifier starting later records what the journal holds
instead of sending again (:func:`vcs_notifier.handlers.replay_journal`), and a handler that
takes a claim over finds the outcome here (:meth:`SentJournal.outcome`).

The file is JSON lines, one outcome each; a line cut short by a crash mid-write does not
parse and is ignored (a later append starts on a line of its own). Entries carry no
namespace: an entry whose request the store does not know is dropped on replay, so a
journal path is meant for one deployment.

**Several processes, one path** (``make run`` and the process it restarts, or two notifiers
given the same folder): every append and every compaction holds an exclusive ``flock`` on a
lock file beside the journal (``<journal>.lock``, never replaced). The lock file rather than
the journal itself, because compaction replaces the journal (a temporary file and
:func:`os.replace`): a lock on the replaced file would lock nothing, and an appender holding
it open would write into the unlinked old file. One file for all rather than one per process
id: a process id is reused after a restart, and every starting notifier would have to find,
replay and delete the files of processes it cannot tell dead from alive. Compaction reads the
file and rewrites it in two short locked steps, the store reads between them unlocked, so a
frozen store never holds up another process's append; what was appended meanwhile is kept.

What a process keeps in memory is bounded by what is under way: the entries the journal held
at its start and were not confirmed, and its own outcomes until their record is written
(:meth:`SentJournal.recorded`). An outcome another running process journals is not seen
until the next start (its record is that process's own business; see the README). While it
runs, each process also drops from the file what it recorded itself, once a minute
(:meth:`FileJournal.compact`, no store command): the file holds about a minute of mails.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import structlog

from vcs_notifier.domain import MailKind, MailOutcome

log = structlog.get_logger(__name__)

FILE_MODE = 0o600
DIR_MODE = 0o700


@dataclass(frozen=True, slots=True)
class Sent:
    """One journaled outcome: of which request's message, and the correlation id its event
    (``credentials.delivered`` or ``.failed``) carries."""

    request_id: str
    outcome: MailOutcome
    correlation_id: str | None = None

    @property
    def key(self) -> tuple[str, MailKind]:
        return self.request_id, self.outcome.kind


class SentJournal(Protocol):
    async def write(self, sent: Sent) -> None:
        """Keeps ``sent`` durably (on disk once this returns); never raises: a journal that
        cannot be written is logged, and the store's record goes ahead all the same."""
        ...

    def outcome(self, request_id: str, kind: MailKind) -> Sent | None:
        """The journaled outcome of that message not recorded yet, if this process knows one."""
        ...

    def recorded(self, request_id: str, kind: MailKind) -> None:
        """The store holds that outcome now: this process forgets it (memory only)."""
        ...

    async def entries(self) -> list[Sent]:
        """Everything the journal holds (at a notifier's start, to replay)."""
        ...

    async def forget(self, confirmed: Collection[tuple[str, MailKind]]) -> None:
        """Drops the entries whose record the store confirmed (the journal rewritten)."""
        ...


class NoJournal:
    """No journal: a message sent but not recorded when its process dies is sent again."""

    async def write(self, sent: Sent) -> None:
        return None

    def outcome(self, request_id: str, kind: MailKind) -> Sent | None:
        return None

    def recorded(self, request_id: str, kind: MailKind) -> None:
        return None

    async def entries(self) -> list[Sent]:
        return []

    async def forget(self, confirmed: Collection[tuple[str, MailKind]]) -> None:
        return None


NO_JOURNAL = NoJournal()


class FileJournal:
    """The journal as an append-only file at ``path`` (its folder made if missing)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_path = path.with_name(path.name + ".lock")
        self._pending: dict[tuple[str, MailKind], Sent] = {}
        self._confirmed: set[tuple[str, MailKind]] = set()
        self._queued: list[tuple[bytes, asyncio.Future[None]]] = []
        """Lines waiting for the next append, each with the future its writer awaits."""
        self._appending = asyncio.Lock()
        """Held while an append is under way."""

    def open(self) -> FileJournal:
        """Checks at start that the journal can be written (a folder it cannot make or a file
        it cannot open stops the notifier with why, rather than leaving it unprotected)."""
        self.path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        with self._locked():
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE))
        _sync_dir(self.path.parent)
        return self

    async def write(self, sent: Sent) -> None:
        """Appends in a group commit: the writer that finds no append under way appends every
        line queued so far (one lock, one ``fsync``); those queued meanwhile wait for it and go
        in the next append together. Each writer returns only once its own line is on disk."""
        self._pending[sent.key] = sent
        appended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queued.append((_line(sent), appended))
        try:
            async with self._appending:
                if not appended.done():
                    await self._append_queued(appended)
            await appended
        except OSError:
            log.exception("journal.write_failed", path=str(self.path), request_id=sent.request_id)

    async def _append_queued(self, own: asyncio.Future[None]) -> None:
        """Appends every queued line in one write and tells each of their writers how it went
        (an error too; ``own``, the caller's, only when it was not interrupted)."""
        batch, self._queued = self._queued, []
        try:
            await asyncio.to_thread(self._append, b"".join(line for line, _ in batch))
        except OSError as exc:
            for _, waiter in batch:
                waiter.set_exception(exc)
            return
        except BaseException as exc:  # this writer cancelled: the others cannot tell either
            interrupted = OSError(f"the append was interrupted: {exc!r}")
            for _, waiter in batch:
                if waiter is not own:
                    waiter.set_exception(interrupted)
            raise
        for _, waiter in batch:
            waiter.set_result(None)

    def outcome(self, request_id: str, kind: MailKind) -> Sent | None:
        return self._pending.get((request_id, kind))

    def recorded(self, request_id: str, kind: MailKind) -> None:
        self._pending.pop((request_id, kind), None)
        self._confirmed.add((request_id, kind))

    async def compact(self) -> None:
        """Drops from the file the outcomes this process recorded since the last time."""
        if not self._confirmed:
            return
        confirmed, self._confirmed = self._confirmed, set()
        try:
            await asyncio.to_thread(self._rewrite, confirmed)
        except OSError:
            self._confirmed |= confirmed  # next time
            raise

    async def entries(self) -> list[Sent]:
        entries = await asyncio.to_thread(self._read)
        for sent in entries:
            self._pending.setdefault(sent.key, sent)
        return entries

    async def forget(self, confirmed: Collection[tuple[str, MailKind]]) -> None:
        done = set(confirmed)
        for key in done:
            self._pending.pop(key, None)
        await asyncio.to_thread(self._rewrite, done)

    def _append(self, lines: bytes) -> None:
        with self._locked():
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, FILE_MODE)
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":  # a line cut short by a crash
                    lines = b"\n" + lines
                os.write(fd, lines)
                os.fsync(fd)
            finally:
                os.close(fd)

    def _read(self) -> list[Sent]:
        with self._locked():
            return list(_parse(self._contents()))

    def _rewrite(self, confirmed: set[tuple[str, MailKind]]) -> None:
        with self._locked():
            kept = [s for s in _parse(self._contents()) if s.key not in confirmed]
            temporary = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
            try:
                os.write(fd, b"".join(_line(s) for s in kept))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temporary, self.path)
            _sync_dir(self.path.parent)

    def _contents(self) -> bytes:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return b""

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock


def _line(sent: Sent) -> bytes:
    outcome = sent.outcome
    entry = {
        "request_id": sent.request_id,
        "kind": outcome.kind.value,
        "state": outcome.state,
        "at": outcome.at.isoformat(),
        "error": outcome.error,
        "correlation_id": sent.correlation_id,
    }
    return json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _parse(contents: bytes) -> Iterator[Sent]:
    """The entries of a journal, later ones of the same message winning; a line that does not
    parse (cut short by a crash) is skipped."""
    entries: dict[tuple[str, MailKind], Sent] = {}
    for raw in contents.split(b"\n"):
        try:
            sent = _entry(json.loads(raw))
        except (ValueError, KeyError, TypeError):
            continue
        entries[sent.key] = sent
    yield from entries.values()


def _entry(entry: Any) -> Sent:
    kind = MailKind(entry["kind"])
    at = datetime.fromisoformat(entry["at"])
    error = entry["error"]
    outcome = MailOutcome.of(kind, error if isinstance(error, str) else None, at=at)
    correlation_id = entry.get("correlation_id")
    return Sent(str(entry["request_id"]), outcome, correlation_id)


def _sync_dir(path: Path) -> None:
    """The folder's entry of a replaced file on disk too (a crash keeps one of the two)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
