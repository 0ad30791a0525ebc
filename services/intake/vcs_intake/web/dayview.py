"""The day view's layout (no I/O): a province's rooms down the side, hours across, bookings
as bars placed by their Asia/Bangkok times.

The hours shown are the working day (07:00-19:00) widened to whatever the day's
bookings need; a bar's place and width are percentages of that span, so the page
draws it with CSS alone and it scales from a phone to a desktop.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from vcs_shared.thaitime import BANGKOK

FIRST_HOUR = 7
LAST_HOUR = 19


@dataclass(frozen=True, slots=True)
class Bar:
    request_id: str
    title: str
    starts_at: datetime
    ends_at: datetime
    left: float
    """Percent of the span from its start."""
    width: float


@dataclass(frozen=True, slots=True)
class RoomRow:
    meeting_id: str
    capacity: int | None
    pool: str
    active: bool
    bars: list[Bar]


@dataclass(frozen=True, slots=True)
class DayView:
    day: date
    hours: list[int]
    rows: list[RoomRow]

    @property
    def bookings(self) -> int:
        return sum(len(row.bars) for row in self.rows)


def lay_out(
    day: date,
    rooms: Iterable[Mapping[str, Any]],
    reservations: Iterable[Mapping[str, Any]],
    titles: Mapping[str, str],
) -> DayView:
    """Rooms (the allocator's pool items) and the day's reservations as rows of bars; a room
    that a reservation names but the rooms do not (an overflow room) gets a row too."""
    booked = [_window(r) for r in reservations]
    start_of_day = datetime.combine(day, time(0), tzinfo=BANGKOK)
    first, last = FIRST_HOUR, LAST_HOUR
    for _, starts, ends in booked:
        first = min(first, max(0, int((starts - start_of_day).total_seconds() // 3600)))
        last = max(last, min(24, -int(-(ends - start_of_day).total_seconds() // 3600)))
    span_start = start_of_day + timedelta(hours=first)
    span = timedelta(hours=last - first)

    rows: dict[str, RoomRow] = {}
    for room in rooms:
        rows[room["meeting_id"]] = RoomRow(
            room["meeting_id"],
            room.get("capacity"),
            room.get("pool", ""),
            bool(room.get("active", True)),
            [],
        )
    for reservation, starts, ends in booked:
        meeting_id = reservation["meeting_id"]
        row = rows.setdefault(
            meeting_id,
            RoomRow(meeting_id, reservation.get("capacity"), reservation.get("pool", ""), True, []),
        )
        shown_from, shown_to = max(starts, span_start), min(ends, span_start + span)
        row.bars.append(
            Bar(
                request_id=reservation["request_id"],
                title=titles.get(reservation["request_id"], reservation["request_id"][:8]),
                starts_at=starts,
                ends_at=ends,
                left=round(100 * (shown_from - span_start) / span, 3),
                width=round(max(0.5, 100 * (shown_to - shown_from) / span), 3),
            )
        )
    ordered = sorted(
        rows.values(), key=lambda r: (r.pool.startswith("region-"), r.capacity or 0, r.meeting_id)
    )
    for row in ordered:
        row.bars.sort(key=lambda bar: bar.starts_at)
    return DayView(day=day, hours=list(range(first, last)), rows=ordered)


def _window(reservation: Mapping[str, Any]) -> tuple[Mapping[str, Any], datetime, datetime]:
    return (
        reservation,
        datetime.fromisoformat(reservation["starts_at"]).astimezone(BANGKOK),
        datetime.fromisoformat(reservation["ends_at"]).astimezone(BANGKOK),
    )
