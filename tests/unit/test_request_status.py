"""The shared status machine and stuck rule: the intake and the desk's read model use these."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vcs_shared.request_status import MOVES, NOT_FINAL, Status, is_stuck

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 5, 7, 0, tzinfo=UTC)
AFTER = timedelta(minutes=10)


@pytest.mark.parametrize("status", list(Status))
def test_only_not_final_statuses_can_be_stuck(status: Status) -> None:
    old = NOW - AFTER - timedelta(seconds=1)
    assert is_stuck(status, old, NOW, AFTER) is (status in NOT_FINAL)


def test_a_request_younger_than_the_limit_is_not_stuck() -> None:
    assert not is_stuck(Status.submitted, NOW - AFTER, NOW, AFTER)
    assert is_stuck(Status.assigned, NOW - AFTER - timedelta(milliseconds=1), NOW, AFTER)


def test_final_statuses_never_move() -> None:
    assert MOVES[Status.rejected] == frozenset()
    assert MOVES[Status.cancelled] == frozenset()
    assert not Status.delivered.may_become(Status.assigned)


def test_settled_statuses_are_those_nothing_moves_on_by_itself() -> None:
    settled = {s for s in Status if s.settled}
    assert settled == {Status.delivered, Status.rejected, Status.cancelled, Status.delivery_failed}


def test_credentials_may_be_sent_again_only_after_a_delivery_was_tried() -> None:
    assert {s for s in Status if s.allows_redelivery} == {Status.delivered, Status.delivery_failed}
