"""The rooms this process's own allocations are claiming right now, or have assigned, so that
they do not race each other for one room nor look at rooms they know are taken.

An allocation reads the slots of its candidate rooms, chooses, then claims. In a burst the
store queues the commands of every allocation under way (16 per process by default), so
many read before any of them claimed, and two that chose the same room race at the slots'
unique index: the loser claims another room (a lost race, a refused insert more; four
store commands more when this was written, when the loser also read the holder and the
slots again). The bench's 100-request burst lost 18-22 races with one allocator, every one
of them between allocations of that one process.

Each allocation notes here the room it is about to claim and for which slots, and the
others of the process treat that room as taken for overlapping windows while the note
lasts: until the allocation ends, or, when the allocation assigned the room (``keep``),
until the window is over or this process hears the booking was cancelled. The allocator
reads the slots of the rooms it does not know to be taken first, so it rarely reads those
of rooms it has itself filled (:mod:`vcs_allocator.handlers`).

This only steers the choice: the unique index still decides every claim, races with other
processes are settled there as before, and when the noted rooms are the only ones left an
allocation reads and claims among them anyway (one may have been given back meanwhile, by
a cancellation another process handled).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from vcs_shared.clock import utc_now


@dataclass(frozen=True, slots=True)
class _Note:
    request_id: str
    first: datetime
    last: datetime


@dataclass(slots=True)
class ClaimsInFlight:
    """What the allocations of this process are claiming or have assigned (one per process)."""

    clock: Callable[[], datetime] = utc_now
    _notes: dict[str, list[_Note]] = field(default_factory=lambda: defaultdict(list))
    _kept: dict[str, list[tuple[str, _Note]]] = field(default_factory=lambda: defaultdict(list))
    """The kept notes by request id, so a cancellation forgets them."""

    def taken(
        self, request_id: str, slots: Sequence[datetime], among: Collection[str]
    ) -> frozenset[str]:
        """The Meeting IDs of ``among`` another allocation of this process claims or assigned
        for slots that overlap ``slots`` (contiguous bounds: their first and last)."""
        if not slots:
            return frozenset()
        first, last = slots[0], slots[-1]
        return frozenset(
            meeting_id
            for meeting_id in among
            if any(
                n.request_id != request_id and n.first <= last and first <= n.last
                for n in self._notes.get(meeting_id, ())
            )
        )

    def add(self, meeting_id: str, note: _Note) -> None:
        self._notes[meeting_id].append(note)

    def remove(self, meeting_id: str, note: _Note) -> None:
        notes = self._notes[meeting_id]
        notes.remove(note)
        if not notes:
            del self._notes[meeting_id]

    def keep(self, meeting_id: str, note: _Note) -> None:
        """The note stays after its allocation: the room is assigned for its window. Notes of
        the room whose window is over go."""
        now = self.clock()
        for old in [n for n in self._notes.get(meeting_id, ()) if n.last < now]:
            if (meeting_id, old) in self._kept.get(old.request_id, ()):
                self._forget_kept(meeting_id, old)
        self._kept[note.request_id].append((meeting_id, note))

    def cancelled(self, request_id: str) -> None:
        """The request was cancelled: the rooms it was assigned are no longer known taken."""
        for meeting_id, note in list(self._kept.get(request_id, ())):
            self._forget_kept(meeting_id, note)

    def _forget_kept(self, meeting_id: str, note: _Note) -> None:
        kept = self._kept[note.request_id]
        kept.remove((meeting_id, note))
        if not kept:
            del self._kept[note.request_id]
        self.remove(meeting_id, note)

    @contextmanager
    def allocation(self, request_id: str) -> Iterator[Noting]:
        """One allocation: what it notes is forgotten when it ends, however it ends, unless
        it kept it."""
        noting = Noting(self, request_id)
        try:
            yield noting
        finally:
            noting.forget()


@dataclass(slots=True)
class Noting:
    """The notes of one allocation."""

    claims: ClaimsInFlight
    request_id: str
    noted: list[tuple[str, _Note]] = field(default_factory=list)

    def taken(self, slots: Sequence[datetime], among: Collection[str]) -> frozenset[str]:
        return self.claims.taken(self.request_id, slots, among)

    def note(self, meeting_id: str, slots: Sequence[datetime]) -> None:
        """This allocation is about to claim ``slots`` of ``meeting_id``."""
        if slots:
            entry = _Note(self.request_id, slots[0], slots[-1])
            self.claims.add(meeting_id, entry)
            self.noted.append((meeting_id, entry))

    def keep(self, meeting_id: str) -> None:
        """The allocation assigned ``meeting_id``: its note outlives the allocation."""
        for noted in [n for n in self.noted if n[0] == meeting_id]:
            self.noted.remove(noted)
            self.claims.keep(*noted)

    def forget(self) -> None:
        for meeting_id, entry in self.noted:
            self.claims.remove(meeting_id, entry)
        self.noted.clear()
