"""Times as offices read them: Asia/Bangkok, Buddhist-era dates in Thai (via pythainlp)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import AfterValidator
from pythainlp.util import thai_strftime

BANGKOK = ZoneInfo("Asia/Bangkok")
FIRST_DAY = date(1970, 1, 2)
LAST_DAY = date(9998, 12, 31)


def calendar_day(day: date) -> date:
    """``day``, if its Bangkok midnight and the next one exist as UTC times and epoch numbers
    (``9999-12-31`` plus a day does not); ``ValueError`` otherwise, for a ``422``."""
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(f"must be a day from {FIRST_DAY} to {LAST_DAY}")
    return day


def _calendar_day_or_none(day: date | None) -> date | None:
    return None if day is None else calendar_day(day)


CalendarDay = Annotated[date | None, AfterValidator(_calendar_day_or_none)]
"""A day a list is filtered on (``?date=``), refused with a ``422`` outside the calendar the
code can count in."""


def thai_datetime(moment: datetime) -> str:
    """E.g. ``วันพฤหัสบดี 26 พฤศจิกายน 2569 เวลา 09:00 น.``"""
    return thai_strftime(moment.astimezone(BANGKOK), "%A %-d %B %Y เวลา %H:%M น.")
