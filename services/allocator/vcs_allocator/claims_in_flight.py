"""The rooms this process's own allocations are claiming right now, so that they do not race
each other for one room.

An allocation reads the slots of its candidate rooms, chooses, then claims. In a burst the
store queues the commands of every allocation under way (16 per process by default), so
many read before any of them claimed, and two that chose the same room race at the slots'
unique index: the loser reads the holder, undoes its inserts, reads the slots again and
claims again (a lost race, four store commands more). The bench's 100-request burst lost
18-22 races with one allocator, every one of them between allocations of that one process.

Each allocation notes here the room it is about to claim and for which slots, and the
others of the process treat that room as taken for overlapping windows while the note
lasts (until the allocation ends). This only steers the choice: the unique index still
decides every claim, races with other processes are settled there as before, and when the
noted rooms are the only ones left an allocation claims among them anyway (the one it
shares may yet be given back).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class _Note:
    request_id: str
    first: datetime
    last: datetime


@dataclass(slots=True)
class ClaimsInFlight:
    """What the allocations under way in this process are claiming (one per process)."""

    _notes: dict[str, list[_Note]] = field(default_factory=lambda: defaultdict(list))

    def taken(self, request_id: str, slots: Sequence[datetime]) -> frozenset[str]:
        """Meeting IDs another allocation of this process is claiming for slots that overlap
        ``slots`` (contiguous, so their first and last bound them)."""
        if not slots:
            return frozenset()
        first, last = slots[0], slots[-1]
        return frozenset(
            meeting_id
            for meeting_id, notes in self._notes.items()
            if any(
                n.request_id != request_id and n.first <= last and first <= n.last for n in notes
            )
        )

    def add(self, meeting_id: str, note: _Note) -> None:
        self._notes[meeting_id].append(note)

    def remove(self, meeting_id: str, note: _Note) -> None:
        notes = self._notes[meeting_id]
        notes.remove(note)
        if not notes:
            del self._notes[meeting_id]

    @contextmanager
    def allocation(self, request_id: str) -> Iterator[Noting]:
        """One allocation: what it notes is forgotten when it ends, however it ends."""
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

    def taken(self, slots: Sequence[datetime]) -> frozenset[str]:
        return self.claims.taken(self.request_id, slots)

    def note(self, meeting_id: str, slots: Sequence[datetime]) -> None:
        """This allocation is about to claim ``slots`` of ``meeting_id``."""
        if slots:
            entry = _Note(self.request_id, slots[0], slots[-1])
            self.claims.add(meeting_id, entry)
            self.noted.append((meeting_id, entry))

    def forget(self) -> None:
        for meeting_id, entry in self.noted:
            self.claims.remove(meeting_id, entry)
        self.noted.clear()
