"""Utilisation per Bangkok day and province, counted from the allocator's own decisions.

Hours available are the province's *active* rooms (of its own pool, as loaded now) times
24: the allocator books on a five-minute grid around the clock, with no opening hours, so
every hour of a day is bookable. Hours booked are the live assignments' windows (not
cancelled), clipped to the day. Requests are the decisions counted on that day (its
meeting's start, :func:`vcs_allocator.store.decision_day`); rejections are counted by reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from vcs_allocator.domain import Decision, DecisionOutcome
from vcs_shared.thaitime import BANGKOK

BOOKABLE_HOURS_PER_DAY = 24


@dataclass(slots=True)
class DayUsage:
    """One row: a province on one day."""

    day: date
    province_code: str
    rooms: int
    hours_booked: float = 0.0
    requests: int = 0
    rejections: Counter[str] = field(default_factory=Counter)

    @property
    def hours_available(self) -> int:
        return self.rooms * BOOKABLE_HOURS_PER_DAY


def usage_of_day(
    day: date, decisions: Iterable[Decision], rooms: Mapping[str, int], provinces: Iterable[str]
) -> list[DayUsage]:
    """The rows of ``day`` for ``provinces`` (each present even if nothing happened)."""
    rows = {code: DayUsage(day, code, rooms.get(code, 0)) for code in sorted(provinces)}
    start = datetime.combine(day, time(0), tzinfo=BANGKOK)
    end = start + timedelta(days=1)
    for decision in decisions:
        row = rows.get(decision.province_code)
        if row is None or decision.outcome is DecisionOutcome.cancelled:
            continue
        row.requests += 1
        if decision.reason is not None:
            row.rejections[decision.reason.value] += 1
        held = decision.reservation
        if held is not None:
            booked = min(held.ends_at, end) - max(held.starts_at, start)
            row.hours_booked += max(booked, timedelta(0)) / timedelta(hours=1)
    return list(rows.values())
