"""Buddhist-era dates as clerks type and read them: both input forms, leap years, the year
boundary, Thai month names."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from vcs_intake.web.dates import (
    DateInputError,
    bangkok,
    be_short,
    clock,
    english_date,
    parse_date,
    parse_time,
    thai_date,
    thai_date_abbreviated,
    thai_official_date,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("2026-12-03", date(2026, 12, 3)),  # what a date picker sends
        ("3/12/2569", date(2026, 12, 3)),  # what a clerk types: day/month/BE year
        ("03/12/2569", date(2026, 12, 3)),
        ("3-12-2569", date(2026, 12, 3)),
        ("3.12.2569", date(2026, 12, 3)),
        (" 3 / 12 / 2569 ", date(2026, 12, 3)),
        ("๓/๑๒/๒๕๖๙", date(2026, 12, 3)),  # Thai digits
        ("3/12/2026", date(2026, 12, 3)),  # a CE year is read as one
        ("31/12/2569", date(2026, 12, 31)),  # the last day of BE 2569 ...
        ("1/1/2570", date(2027, 1, 1)),  # ... and the first of BE 2570
        ("29/2/2571", date(2028, 2, 29)),  # BE 2571 is CE 2028, a leap year
        ("2028-02-29", date(2028, 2, 29)),
        ("29/2/2543", date(2000, 2, 29)),  # CE 2000: divisible by 400, leap
    ],
)
def test_both_input_forms_are_read(typed: str, expected: date) -> None:
    assert parse_date(typed) == expected


@pytest.mark.parametrize(
    "typed",
    [
        "29/2/2569",  # CE 2026: not a leap year
        "2026-02-29",
        "29/2/2643",  # CE 2100: divisible by 100, not by 400
        "31/4/2569",  # April has 30 days
        "0/1/2569",
        "1/13/2569",
        "3/12/69",  # a two-digit year is ambiguous
        "3 ธันวาคม 2569",
        "",
        "tomorrow",
        "20261203",
    ],
)
def test_what_is_not_a_date_is_refused(typed: str) -> None:
    with pytest.raises(DateInputError):
        parse_date(typed)


def test_dates_read_back_in_the_buddhist_era_with_thai_month_names() -> None:
    assert be_short(date(2026, 12, 3)) == "3/12/2569"
    assert parse_date(be_short(date(2028, 2, 29))) == date(2028, 2, 29)
    assert thai_date(date(2026, 12, 3)) == "3 ธันวาคม 2569"
    assert thai_date(date(2026, 12, 3), weekday=True) == "วันพฤหัสบดี 3 ธันวาคม 2569"
    assert thai_official_date(date(2026, 12, 3)) == "วันพฤหัสบดีที่ 3 ธันวาคม พ.ศ. 2569"
    assert thai_date_abbreviated(date(2027, 1, 1)) == "ศ 1 ม.ค. 2570"
    assert english_date(date(2026, 12, 3)) == "3 December 2026 (BE 2569)"


def test_a_moment_is_dated_by_its_day_in_bangkok_across_the_year_boundary() -> None:
    # 31 Dec 2026 18:30 UTC is already 1 January 2027 (BE 2570), 01:30 in Bangkok.
    moment = datetime(2026, 12, 31, 18, 30, tzinfo=UTC)
    assert thai_date(moment) == "1 มกราคม 2570"
    assert clock(moment) == "01:30"
    assert bangkok(date(2027, 1, 1), time(1, 30)) == moment


@pytest.mark.parametrize(
    ("typed", "expected"),
    [("09:00", time(9)), ("9.30", time(9, 30)), ("13:05 น.", time(13, 5)), ("๐๘:๑๕", time(8, 15))],
)
def test_times_are_read_as_clerks_write_them(typed: str, expected: time) -> None:
    assert parse_time(typed) == expected


@pytest.mark.parametrize("typed", ["24:00", "9:60", "9", "nine", ""])
def test_what_is_not_a_time_is_refused(typed: str) -> None:
    with pytest.raises(DateInputError):
        parse_time(typed)
