"""The soak's checker counts exactly the faults a history holds, each kind on its own."""

from __future__ import annotations

import pytest

from vcs_tools.chaos.check import SeenDeadLetter, SeenEvent, SeenMail, verdict

pytestmark = pytest.mark.unit

NINE = "2027-01-05T09:00:00+07:00"
TEN = "2027-01-05T10:00:00+07:00"
ELEVEN = "2027-01-05T11:00:00+07:00"


def assigned(
    request_id: str, meeting_id: str, start: str, end: str, event_id: str = ""
) -> SeenEvent:
    data = {"meeting_id": meeting_id, "starts_at": start, "ends_at": end}
    return SeenEvent(event_id or f"a-{request_id}", "room.assigned", request_id, data)


def event(name: str, request_id: str, event_id: str = "") -> SeenEvent:
    return SeenEvent(event_id or f"{name}-{request_id}", name, request_id, {})


def clean_history() -> tuple[dict[str, str | None], list[SeenEvent], list[SeenMail]]:
    """r1 delivered in room 111 09-10, r2 delivered in 111 10-11 (adjacent, no overlap),
    r3 cancelled after its room was released, r4 rejected."""
    statuses: dict[str, str | None] = {
        "r1": "delivered",
        "r2": "delivered",
        "r3": "cancelled",
        "r4": "rejected",
    }
    events = [
        assigned("r1", "111", NINE, TEN),
        assigned("r2", "111", TEN, ELEVEN),
        assigned("r3", "111", NINE, ELEVEN),
        event("room.released", "r3"),
        event("request.rejected", "r4"),
    ]
    mails = [
        SeenMail("r1", "assigned"),
        SeenMail("r2", "assigned"),
        SeenMail("r3", "assigned"),
        SeenMail("r3", "cancelled"),
    ]
    return statuses, events, mails


def test_a_clean_history_counts_nothing() -> None:
    statuses, events, mails = clean_history()
    found = verdict(statuses, events + events[:1], mails, [])  # a redelivered copy is no fault
    assert found.ok
    assert found.line(minutes=2, faults=8) == (
        "CHAOS minutes=2 requests=4 faults=8 lost=0 double_booked=0 duplicate_mails=0 "
        "resent=0 republished=0 dead_letters=0 unexplained=0"
    )


def test_a_request_not_final_and_a_delivery_without_its_mail_are_lost() -> None:
    statuses, events, mails = clean_history()
    statuses["r5"] = "assigned"
    found = verdict(statuses, events, [m for m in mails if m.request_id != "r2"], [])
    assert (found.lost, found.double_booked, found.duplicate_mails) == (2, 0, 0)
    assert not found.ok


def test_overlapping_live_bookings_of_one_meeting_id_are_double_booked() -> None:
    statuses, events, mails = clean_history()
    statuses["r6"] = "delivered"
    events.append(assigned("r6", "111", "2027-01-05T09:30:00+07:00", TEN))
    found = verdict(statuses, events, [*mails, SeenMail("r6", "assigned")], [])
    assert (found.double_booked, found.lost) == (1, 0)


def test_one_request_holding_two_rooms_is_double_booked() -> None:
    statuses, events, mails = clean_history()
    events.append(assigned("r1", "222", NINE, TEN, event_id="a-r1-again"))
    found = verdict(statuses, events, mails, [])
    assert found.double_booked == 1
    assert found.republished == 1  # and its room.assigned went out under a second id


def test_a_second_mail_of_a_kind_counts() -> None:
    statuses, events, mails = clean_history()
    doubled = [*mails, SeenMail("r1", "assigned"), SeenMail("r3", "cancelled")]
    assert verdict(statuses, events, doubled, []).duplicate_mails == 2


def test_a_copy_sent_again_after_the_notifier_was_killed_mid_send_is_resent_not_duplicate() -> None:
    """The first copy went out at 100 s; the notifier was killed 0.2 s later, before it could
    record it, and its successor sent it again at 150 s. A kill long after the first copy (or
    before it) explains nothing: a logic error sending twice still counts."""
    statuses, events, mails = clean_history()
    first, again = SeenMail("r1", "assigned", arrived=100.0), SeenMail("r1", "assigned", 150.0)
    mails = [m for m in mails if m.request_id != "r1"] + [first, again]

    killed_mid_send = verdict(statuses, events, mails, [], notifier_killed=[100.2])
    killed_long_after = verdict(statuses, events, mails, [], notifier_killed=[100.0 + 61])
    killed_before = verdict(statuses, events, mails, [], notifier_killed=[98.0])

    assert (killed_mid_send.duplicate_mails, killed_mid_send.resent) == (0, 1)
    assert killed_mid_send.ok
    assert killed_mid_send.details == ()
    for found in (killed_long_after, killed_before):
        assert (found.duplicate_mails, found.resent) == (1, 0)
        assert found.details == ("duplicate mail: 2 assigned mails for r1",)


def test_an_event_published_again_under_a_new_id_is_republished() -> None:
    statuses, events, mails = clean_history()
    events.append(event("request.rejected", "r4", event_id="second-id"))
    found = verdict(statuses, events, mails, [])
    assert (found.republished, found.lost, found.double_booked) == (1, 0, 0)


def test_only_poison_with_a_reason_and_a_final_request_explains_a_dead_letter() -> None:
    statuses, events, mails = clean_history()
    poison = SeenDeadLetter("p-r1", "data.participants: not an integer", True, "r1")
    poison_of_no_request = SeenDeadLetter("p-0", "not a CloudEvent", True)
    found = verdict(statuses, events, mails, [poison, poison_of_no_request])
    assert (found.dead_letters, found.unexplained) == (2, 0)
    assert found.ok

    at_the_limit = SeenDeadLetter("a-r1", "delivery_limit", False, "r1")  # r1 is delivered
    without_reason = SeenDeadLetter("p-r2", None, True, "r2")
    of_no_soak_request = SeenDeadLetter("p-x", "not a CloudEvent", True, "nobody")
    found = verdict(
        statuses, events, mails, [poison, at_the_limit, without_reason, of_no_soak_request]
    )
    assert (found.dead_letters, found.unexplained) == (4, 3)
    assert not found.ok
    assert [d for d in found.details if "unexplained" in d] == [
        "unexplained dead letter a-r1: a good message of r1 (delivery_limit)",
        "unexplained dead letter p-r2: poison without a reason",
        "unexplained dead letter p-x: poison that left nobody unfinished",
    ]
    statuses["r1"] = "assigned"
    assert verdict(statuses, events, mails, [poison]).unexplained == 1
