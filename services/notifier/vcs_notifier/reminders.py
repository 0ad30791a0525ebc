"""Reminders before a meeting: when each is due, and what the office is told; no I/O here.

``VCS_REMINDERS`` lists how long before the start each reminder goes
(``1d,30m``: a day before and half an hour before). When a room is assigned, one
:class:`Reminder` per lead time still ahead is scheduled durably in the store
(:class:`~vcs_notifier.store.MongoReminderStore`), not in an in-memory timer, so a
restart or a second notifier process changes nothing: whichever process claims a
due reminder first sends it, once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

UNITS = {
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "s": timedelta(seconds=1),
}
_LEAD = re.compile(r"(?:(\d+)([dhms]))+")
_PART = re.compile(r"(\d+)([dhms])")


def parse_leads(text: str) -> tuple[timedelta, ...]:
    """``"1d,30m"`` → (1 day, 30 minutes), longest first; ``""`` → none. ``ValueError``
    naming the part that is not a lead time (``90``, ``1w``, ``0m``)."""
    leads: set[timedelta] = set()
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            continue
        if not _LEAD.fullmatch(part):
            raise ValueError(
                f"{part!r} is not a lead time: use numbers with d, h, m or s, e.g. 1d,2h,30m"
            )
        lead = sum((int(n) * UNITS[unit] for n, unit in _PART.findall(part)), start=timedelta())
        if lead <= timedelta():
            raise ValueError(f"{part!r} is no time before the meeting")
        leads.add(lead)
    return tuple(sorted(leads, reverse=True))


def label(lead: timedelta) -> str:
    """A lead time written back the way it is configured (``1d``, ``30m``, ``1h30m``)."""
    seconds = int(lead.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class Reminder:
    """One reminder of one request: due ``lead`` before the meeting's start."""

    request_id: str
    lead: timedelta
    due_at: datetime

    @property
    def reminder_id(self) -> str:
        """One per request and lead time: scheduling it twice keeps one."""
        return f"{self.request_id}:{label(self.lead)}"


def plan(
    request_id: str, starts_at: datetime, leads: tuple[timedelta, ...], *, now: datetime
) -> list[Reminder]:
    """The reminders still ahead for a meeting starting at ``starts_at``: a lead time already
    passed (a meeting booked for within the hour) has no reminder."""
    return [
        Reminder(request_id, lead, starts_at - lead) for lead in leads if starts_at - lead > now
    ]


def lead_th(lead: timedelta) -> str:
    """``1 วัน``, ``30 นาที``, ``1 ชั่วโมง 30 นาที``."""
    return _spoken(lead, {"d": "วัน", "h": "ชั่วโมง", "m": "นาที", "s": "วินาที"}, plural="")


def lead_en(lead: timedelta) -> str:
    """``1 day``, ``30 minutes``, ``1 hour 30 minutes``."""
    return _spoken(lead, {"d": "day", "h": "hour", "m": "minute", "s": "second"}, plural="s")


def _spoken(lead: timedelta, words: dict[str, str], *, plural: str) -> str:
    spoken = []
    for part in _PART.findall(label(lead)):
        count, unit = int(part[0]), part[1]
        spoken.append(f"{count} {words[unit]}{plural if count != 1 else ''}")
    return " ".join(spoken)
