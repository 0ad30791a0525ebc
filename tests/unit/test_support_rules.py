"""The support ticket's rules (vcs_desk.tickets): open -> claimed -> done, nothing else; a
cancelled meeting closes its ticket; who may see one; the events carry no contact details."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.support.auth import codec, national_operator_token, office_token, operator_token
from tests.support.events import request_submitted
from vcs_desk.tickets import Ticket, TicketConflict, TicketState
from vcs_shared.events import Contact, SupportOrigin, SupportResolution

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
VISIT = NOW + timedelta(days=1)
CONTACT = Contact(name="สมหญิง รักงาน", email="somying@example.go.th", phone="042-711361")


def asked(district_code: str = "4701", key: str | None = "k1") -> Ticket:
    return Ticket.asked(
        district_code=district_code,
        topic="ตั้งค่าไมโครโฟน",
        contact=CONTACT,
        by=codec.verify(office_token(district_code)),
        at=NOW,
        idempotency_key=key,
    )


def test_a_ticket_goes_open_claimed_done_and_no_other_way() -> None:
    ticket = asked()
    assert ticket.state is TicketState.open
    with pytest.raises(TicketConflict, match="claim it first"):
        ticket.finished(note="x", by="operator:a", at=NOW)

    claimed, event = ticket.claimed(helper="นายช่าง", visit_at=VISIT, by="operator:a", at=NOW)
    assert claimed.state is TicketState.claimed
    assert (event.visit_at, event.ticket_id, event.routing_key()) == (
        VISIT,
        ticket.ticket_id,
        "support.claimed.47.4701",
    )
    with pytest.raises(TicketConflict, match="already claimed: นายช่าง"):
        claimed.claimed(helper="other", visit_at=VISIT, by="operator:b", at=NOW)

    done, finished = claimed.finished(note="เรียบร้อย", by="operator:a", at=NOW)
    assert done.state is TicketState.done
    assert finished.resolution is SupportResolution.helped
    for move in (
        lambda: done.claimed(helper="x", visit_at=VISIT, by="operator:b", at=NOW),
        lambda: done.finished(note="again", by="operator:b", at=NOW),
    ):
        with pytest.raises(TicketConflict, match="already done"):
            move()
    assert done.closed_with_request(at=NOW) is None


@pytest.mark.parametrize("claimed", [False, True])
def test_a_cancelled_meeting_closes_its_open_or_claimed_ticket(claimed: bool) -> None:
    event = request_submitted("req-1", NOW + timedelta(days=2), needs_support=True)
    ticket = Ticket.for_request(event, CONTACT, at=NOW)
    assert ticket.ticket_id == ticket.request_id == event.request_id
    assert ticket.origin is SupportOrigin.request
    if claimed:
        ticket, _ = ticket.claimed(helper="นายช่าง", visit_at=VISIT, by="operator:a", at=NOW)

    closed = ticket.closed_with_request(at=NOW)

    assert closed is not None
    after, done = closed
    assert after.state is TicketState.done
    assert done.resolution is SupportResolution.request_cancelled
    assert after.closure is not None
    assert after.closure.closed_by is None


def test_the_same_idempotency_key_of_one_office_names_the_same_ticket() -> None:
    assert asked(key="k1").ticket_id == asked(key="k1").ticket_id
    assert asked(key="k1").ticket_id != asked(key="k2").ticket_id
    assert asked(key="k1").ticket_id != asked("4702", key="k1").ticket_id
    assert asked(key=None).ticket_id != asked(key=None).ticket_id


def test_who_sees_a_ticket() -> None:
    ticket = asked("4701")
    bangkok = asked("1001")
    assert ticket.visible_to(codec.verify(office_token("4701")))
    assert not ticket.visible_to(codec.verify(office_token("4702")))
    region_12 = codec.verify(operator_token("a", region="12"))
    assert ticket.visible_to(region_12)
    assert not bangkok.visible_to(region_12)
    assert bangkok.visible_to(codec.verify(national_operator_token()))


def test_the_events_carry_no_contact_details_names_or_notes() -> None:
    ticket = asked()
    claimed, claim_event = ticket.claimed(
        helper="นายช่าง ใจดี", visit_at=VISIT, by="operator:a", at=NOW
    )
    _, done_event = claimed.finished(note="ติดตั้งแล้ว", by="operator:a", at=NOW)
    for event in (ticket.requested(), claim_event, done_event):
        text = event.model_dump_json()
        for private in (CONTACT.email, CONTACT.phone, CONTACT.name, "นายช่าง", "ติดตั้งแล้ว"):
            assert private not in text, (event.name, private)
