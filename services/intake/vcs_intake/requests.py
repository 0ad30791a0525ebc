"""What the intake does with an office's request, apart from HTTP: accept, show, cancel."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

from vcs_intake.schemas import (
    AssignmentView,
    RejectionView,
    RequestView,
    SubmitRequest,
)
from vcs_intake.store import DuplicateSubmission, RequestStore
from vcs_shared.auth import Principal
from vcs_shared.credentials import CredentialsSealer
from vcs_shared.envelope import encode
from vcs_shared.events import RequestCancelled, RequestSubmitted
from vcs_shared.offices import find_office
from vcs_shared.outbox import OutboxRelay, outbox_fields
from vcs_shared.store import epoch_ms

SOURCE = "intake"

Document = dict[str, Any]


class IdempotencyConflict(ValueError):
    """The Idempotency-Key was used before for a different request body."""


class NotPermitted(Exception):
    """The caller may not submit for this district (an office for another one, an operator
    outside its provinces); ``district_code`` names it."""

    def __init__(self, district_code: str) -> None:
        self.district_code = district_code
        super().__init__(f"may not submit for district {district_code}")


async def accept(
    principal: Principal,
    payload: SubmitRequest,
    idempotency_key: str | None,
    store: RequestStore,
    relay: OutboxRelay,
) -> tuple[Document, bool]:
    """The one way a request comes in, from the API and from the clerks' form alike:
    the caller's right to submit for the district, then :func:`submit`."""
    office = find_office(payload.district_code)
    assert office is not None  # SubmitRequest validated the code
    if not principal.may_act_for(office.district_code, office.province_code):
        raise NotPermitted(office.district_code)
    return await submit(payload, idempotency_key, store, relay)


async def submit(
    payload: SubmitRequest, idempotency_key: str | None, store: RequestStore, relay: OutboxRelay
) -> tuple[Document, bool]:
    """Stores the request with its event in one write, then publishes; (document, created)."""
    office = find_office(payload.district_code)
    assert office is not None  # SubmitRequest validated the code
    request_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    event = RequestSubmitted(
        request_id=request_id,
        province_code=office.province_code,
        district_code=office.district_code,
        title=payload.title,
        starts_at=payload.starts_at,
        ends_at=payload.ends_at,
        participants=payload.participants,
        urgency=payload.urgency,
        needs_support=payload.needs_support,
        contact=payload.contact,
        submitted_at=now,
    )
    outbox = outbox_fields([], [encode(event, source=SOURCE, correlation_id=request_id)])
    fingerprint = hashlib.sha256(payload.model_dump_json().encode()).hexdigest()
    document: Document = {
        "_id": request_id,
        "district_code": office.district_code,
        "province_code": office.province_code,
        "title": payload.title,
        "starts_at": payload.starts_at.astimezone(UTC),
        "ends_at": payload.ends_at.astimezone(UTC),
        "participants": payload.participants,
        "urgency": payload.urgency.value,
        "needs_support": payload.needs_support,
        "contact": payload.contact.model_dump(),
        "status": "submitted",
        "submitted_at": now,
        # Integer copies for lists: the embedded store filters and sorts numbers reliably.
        "submitted_ms": epoch_ms(now),
        "starts_ms": epoch_ms(payload.starts_at),
        "idempotency_key": (
            f"{office.district_code}:{idempotency_key}" if idempotency_key else f"auto:{request_id}"
        ),
        "fingerprint": fingerprint,
        "assignment": None,
        "rejection": None,
        **outbox,
    }
    try:
        await store.insert(document)
    except DuplicateSubmission as duplicate:
        if duplicate.existing.get("fingerprint") != fingerprint:
            raise IdempotencyConflict(
                "this Idempotency-Key was already used for a different request"
            ) from duplicate
        return duplicate.existing, False
    await relay.publish_now(request_id, outbox["outbox"])
    return document, True


async def cancel(document: Document, by: str, store: RequestStore, relay: OutboxRelay) -> Document:
    """Cancels a request (harmless when already cancelled); the allocator frees the room."""
    event = RequestCancelled(
        request_id=document["_id"],
        province_code=document["province_code"],
        district_code=document["district_code"],
        cancelled_by=by,
        cancelled_at=datetime.now(UTC),
    )
    message = encode(event, source=SOURCE, correlation_id=document["_id"])
    updated, written = await store.cancel(document["_id"], [message], event.cancelled_at, by)
    if written is not None:
        await relay.publish_now(document["_id"], written)
    return updated or document


def view(document: Document, sealer: CredentialsSealer) -> RequestView:
    """The request as its owner sees it: the passcode is opened here, and only here."""
    assignment = None
    if document.get("assignment") and document["status"] not in ("cancelled", "rejected"):
        stored = document["assignment"]
        credentials = sealer.open(stored["sealed_credentials"])
        assignment = AssignmentView(
            meeting_id=stored["meeting_id"],
            join_url=credentials.join_url,
            passcode=credentials.passcode,
            capacity=stored["capacity"],
        )
    rejection = RejectionView(**document["rejection"]) if document.get("rejection") else None
    return RequestView(
        request_id=document["_id"],
        status=document["status"],
        district_code=document["district_code"],
        province_code=document["province_code"],
        title=document["title"],
        starts_at=document["starts_at"],
        ends_at=document["ends_at"],
        participants=document["participants"],
        urgency=document["urgency"],
        needs_support=document["needs_support"],
        contact=document["contact"],
        submitted_at=document["submitted_at"],
        assignment=assignment,
        rejection=rejection,
        delivery_error=document.get("delivery_error"),
    )
