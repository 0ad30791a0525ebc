"""Reminder lead times (``VCS_REMINDERS``) and which reminders a meeting gets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from tests.unit.test_settings_validation import environment  # noqa: F401 (fixture)
from vcs_notifier.reminders import label, lead_en, lead_th, parse_leads, plan
from vcs_notifier.settings import NotifierSettings

pytestmark = pytest.mark.unit


def test_lead_times_are_read_longest_first_and_written_back_alike() -> None:
    leads = parse_leads(" 30m, 1d ,1h30m,30m")

    assert leads == (timedelta(days=1), timedelta(minutes=90), timedelta(minutes=30))
    assert [label(lead) for lead in leads] == ["1d", "1h30m", "30m"]
    assert parse_leads("") == ()
    assert lead_th(timedelta(minutes=90)) == "1 ชั่วโมง 30 นาที"
    assert lead_en(timedelta(minutes=90)) == "1 hour 30 minutes"
    assert lead_en(timedelta(days=1)) == "1 day"


@pytest.mark.parametrize("bad", ["90", "1w", "0m", "1d30", "-5m", "ten minutes"])
def test_a_wrong_lead_time_is_refused_naming_it(bad: str) -> None:
    with pytest.raises(ValueError, match=r"lead time|no time"):
        parse_leads(f"1d,{bad}")


def test_only_reminders_still_ahead_are_planned() -> None:
    now = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)
    starts_at = now + timedelta(hours=2)

    planned = plan("r-1", starts_at, parse_leads("1d,2h,30m"), now=now)

    assert [(r.reminder_id, r.due_at) for r in planned] == [
        ("r-1:30m", starts_at - timedelta(minutes=30))
    ]  # a day before and two hours before have passed (2h is now, not ahead)


def test_the_notifier_refuses_wrong_reminders_naming_the_setting(
    environment: pytest.MonkeyPatch,  # noqa: F811
) -> None:
    environment.setenv("VCS_REMINDERS", "1d,soon")
    with pytest.raises(ValidationError, match="reminders") as refused:
        NotifierSettings()
    assert "'soon' is not a lead time" in str(refused.value)

    environment.setenv("VCS_REMINDERS", "")
    assert NotifierSettings().reminder_leads() == ()
    environment.delenv("VCS_REMINDERS")
    assert NotifierSettings().reminder_leads() == (timedelta(days=1), timedelta(minutes=30))
