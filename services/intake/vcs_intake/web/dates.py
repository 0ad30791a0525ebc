"""Dates and times as Thai clerks write and read them.

Thai official documents date by the Buddhist Era (BE = CE + 543) with Thai month
names: "3 ธันวาคม 2569". The form's ``date`` field takes what a date picker sends
(ISO, ``2026-12-03``) or what a clerk types (``3/12/2569``, day/month/BE year; Thai
digits too). Formatting goes through pythainlp's ``thai_strftime``, which knows the
month and weekday names and the era; this module only parses and picks formats.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time

from pythainlp.util import thai_digit_to_arabic_digit, thai_strftime

from vcs_shared.thaitime import BANGKOK, calendar_day

BE_OFFSET = 543
# A year at or above this is read as Buddhist Era (BE 2400 is CE 1857, long before any meeting).
FIRST_BE_YEAR = 2400

_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_DAY_MONTH_YEAR = re.compile(r"^(\d{1,2})\s*[/.\-]\s*(\d{1,2})\s*[/.\-]\s*(\d{4})$")
_TIME = re.compile(r"^(\d{1,2})\s*[:.]\s*(\d{2})(?:\s*(?:น\.?|นาฬิกา))?$")


class DateInputError(ValueError):
    """The text is not a date or time this form understands (the message says which form)."""


def parse_date(text: str) -> date:
    """``2026-12-03`` or ``3/12/2569`` (also ``03-12-2569``, ``๓/๑๒/๒๕๖๙``; a four-digit year
    below 2400 is taken as CE, so ``3/12/2026`` works too)."""
    cleaned = thai_digit_to_arabic_digit(text.strip())
    if match := _ISO.match(cleaned):
        year, month, day = (int(part) for part in match.groups())
    elif match := _DAY_MONTH_YEAR.match(cleaned):
        day, month, year = (int(part) for part in match.groups())
        if year >= FIRST_BE_YEAR:
            year -= BE_OFFSET
    else:
        raise DateInputError("not a date: write it as 3/12/2569 (day/month/BE year)")
    try:
        return calendar_day(date(year, month, day))
    except ValueError as exc:  # 29/2 of a common year, month 13, year 9999 ...
        raise DateInputError(f"no such day: {exc}") from exc


def parse_time(text: str) -> time:
    """``09:00``, ``9.00`` or ``9.00 น.`` (Asia/Bangkok wall-clock time)."""
    match = _TIME.match(thai_digit_to_arabic_digit(text.strip()))
    if match is None:
        raise DateInputError("not a time: write it as 09:00")
    hour, minute = int(match.group(1)), int(match.group(2))
    if hour > 23 or minute > 59:
        raise DateInputError("no such time of day")
    return time(hour, minute)


def bangkok(day: date, at: time) -> datetime:
    """The moment a clerk means by a day and a wall-clock time in Thailand."""
    return datetime.combine(day, at, tzinfo=BANGKOK)


def be_short(day: date) -> str:
    """``3/12/2569``: how the form shows a date back, and a clerk types one."""
    return f"{day.day}/{day.month}/{day.year + BE_OFFSET}"


def thai_date(moment: date | datetime, *, weekday: bool = False) -> str:
    """``3 ธันวาคม 2569``, or ``วันพฤหัสบดี 3 ธันวาคม 2569`` (BE, Thai month names)."""
    day = _bangkok_day(moment)
    return thai_strftime(_midday(day), "%A %-d %B %Y" if weekday else "%-d %B %Y")


def thai_official_date(moment: date | datetime) -> str:
    """``วันศุกร์ที่ 4 ธันวาคม พ.ศ. 2569``: the style of Thai official letters."""
    return thai_strftime(_midday(_bangkok_day(moment)), "%Aที่ %-d %B พ.ศ. %Y")


def thai_date_abbreviated(moment: date | datetime) -> str:
    """``พฤ. 3 ธ.ค. 2569``: for lists, where space is short."""
    day = _bangkok_day(moment)
    return thai_strftime(_midday(day), "%a %-d %b %Y")


def english_date(moment: date | datetime, *, weekday: bool = False) -> str:
    """``3 December 2026 (BE 2569)``: the English switch keeps the era visible."""
    day = _bangkok_day(moment)
    text = f"{day.day} {day.strftime('%B')} {day.year} (BE {day.year + BE_OFFSET})"
    return f"{day.strftime('%A')} {text}" if weekday else text


def clock(moment: datetime) -> str:
    """``09:00`` in Asia/Bangkok."""
    return moment.astimezone(BANGKOK).strftime("%H:%M")


def _bangkok_day(moment: date | datetime) -> date:
    return moment.astimezone(BANGKOK).date() if isinstance(moment, datetime) else moment


def _midday(day: date) -> datetime:
    return datetime.combine(day, time(12), tzinfo=BANGKOK)
