"""What the intake does with an office's request, apart from HTTP: accept, show, cancel."""

from __future__ import annotations

import hashlib
import uuid

from vcs_intake.domain import RequestState, Status
from vcs_intake.schemas import AssignmentView, RejectionView, RequestView, SubmitRequest
from vcs_intake.store import DuplicateSubmission, RequestStore
from vcs_shared.audit import Actor, AuditAction, AuditRecorded, Target
from vcs_shared.auth import Principal
from vcs_shared.clock import Clock
from vcs_shared.credentials import CredentialsSealer
from vcs_shared.offices import Office


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
    clock: Clock,
) -> tuple[RequestState, bool]:
    """The one way a request comes in, from the API and from the clerks' form alike: the
    caller's right to submit for the district, then :func:`submit`."""
    office = payload.office
    if not principal.may_act_for(office.district_code, office.province_code):
        raise NotPermitted(office.district_code)
    return await submit(payload, office, idempotency_key, store, clock)


async def submit(
    payload: SubmitRequest,
    office: Office,
    idempotency_key: str | None,
    store: RequestStore,
    clock: Clock,
) -> tuple[RequestState, bool]:
    """Stores the request with its event in one write (then it is published); (request, created).

    ``office`` is the payload's office, resolved once by the caller.
    """
    request_id = str(uuid.uuid4())
    fingerprint = hashlib.sha256(payload.model_dump_json().encode()).hexdigest()
    request = RequestState(
        request_id=request_id,
        district_code=office.district_code,
        province_code=office.province_code,
        title=payload.title,
        starts_at=payload.starts_at,
        ends_at=payload.ends_at,
        participants=payload.participants,
        urgency=payload.urgency,
        needs_support=payload.needs_support,
        contact=payload.contact,
        submitted_at=clock(),
        idempotency_key=(
            f"{office.district_code}:{idempotency_key}" if idempotency_key else f"auto:{request_id}"
        ),
        fingerprint=fingerprint,
    )
    try:
        await store.insert(request)
    except DuplicateSubmission as duplicate:
        if duplicate.existing.fingerprint != fingerprint:
            raise IdempotencyConflict(
                "this Idempotency-Key was already used for a different request"
            ) from duplicate
        return duplicate.existing, False
    return request, True


async def cancel(
    request: RequestState, by: Principal, store: RequestStore, clock: Clock
) -> RequestState:
    """Cancels a request (harmless when already cancelled); the allocator frees the room.

    The event says only whether an office or an operator cancelled (it is public); the audit
    entry, in the same write, names who (a person, an operator's or an office's token)."""
    at = clock()
    entry = AuditRecorded(
        actor=Actor.of(by),
        action=AuditAction.request_cancel,
        target=Target(kind="request", id=request.request_id),
        provinces=(request.province_code,),
        before=request.status.value,
        after=Status.cancelled.value,
        detail=f"{request.district_code}: {request.title}"[:2000],
        at=at,
    )
    updated = await store.cancel(request.cancelled(by=by.role.value, at=at), entry)
    return updated or request


def view(request: RequestState, sealer: CredentialsSealer) -> RequestView:
    """The request as its owner sees it: the passcode is opened here, and only here."""
    assignment = None
    if (stored := request.visible_assignment) is not None:
        credentials = sealer.open(stored.sealed_credentials)
        assignment = AssignmentView(
            meeting_id=stored.meeting_id,
            join_url=credentials.join_url,
            passcode=credentials.passcode,
            capacity=stored.capacity,
        )
    rejection = None
    if request.rejection is not None:
        rejection = RejectionView.model_validate(request.rejection, from_attributes=True)
    as_stored = RequestView.model_fields.keys() - {"assignment", "rejection"}
    fields = {name: getattr(request, name) for name in as_stored}
    return RequestView(**fields, assignment=assignment, rejection=rejection)
