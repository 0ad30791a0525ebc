"""What the intake does with an office's request, apart from HTTP: accept, show, cancel."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime

import structlog

from vcs_intake.domain import BookingRules, FieldProblem, RequestState
from vcs_intake.schemas import AssignmentView, RejectionView, RequestView, SubmitRequest
from vcs_intake.store import DuplicateSubmission, RequestFilter, RequestStore
from vcs_shared.audit import Actor, AuditAction, AuditRecorded, Target
from vcs_shared.auth import Principal
from vcs_shared.clock import Clock
from vcs_shared.credentials import CredentialsSealer, CredentialsSealError
from vcs_shared.offices import Office
from vcs_shared.request_status import OPEN, Status
from vcs_shared.store import epoch_ms

log = structlog.get_logger(__name__)

KEY_RETIRED = "credentials unavailable: key retired"
"""What a request shows when its credentials were sealed with a key no longer configured."""


class IdempotencyConflict(ValueError):
    """The Idempotency-Key was used before for a different request body."""


class NotPermitted(Exception):
    """The caller may not submit for this district (an office for another one, an operator
    outside its provinces); ``district_code`` names it."""

    def __init__(self, district_code: str) -> None:
        self.district_code = district_code
        super().__init__(f"may not submit for district {district_code}")


class InvalidRequest(ValueError):
    """The request breaks a booking rule that needs the time to check (``problems`` name the
    fields): refused before anything is stored."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))


class QuotaExceeded(Exception):
    """The office already holds ``limit`` future bookings."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(
            f"this office already has {limit} upcoming bookings, the most it may hold at once "
            f"(VCS_MAX_OPEN_REQUESTS_PER_OFFICE={limit}); cancel one it no longer needs, or ask "
            "the regional operators"
        )


class NotCancellable(Exception):
    """The request cannot be cancelled; the message says why."""


async def accept(
    principal: Principal,
    payload: SubmitRequest,
    idempotency_key: str | None,
    store: RequestStore,
    clock: Clock,
    rules: BookingRules,
    sealer: CredentialsSealer,
) -> tuple[RequestState, bool]:
    """The one way a request comes in, from the API and from the clerks' form alike: the
    caller's right to submit for the district, the window's rules, the office's quota (not
    for operators), then :func:`submit`."""
    office = payload.office
    if not principal.may_act_for(office.district_code, office.province_code):
        raise NotPermitted(office.district_code)
    now = clock()
    if problems := rules.window_problems(payload.starts_at, payload.ends_at, now):
        raise InvalidRequest(problems)
    if not principal.is_operator:
        await _within_quota(office, idempotency_key, store, now, rules.max_open_per_office)
    return await submit(payload, office, idempotency_key, store, clock, sealer)


async def _within_quota(
    office: Office, idempotency_key: str | None, store: RequestStore, now: datetime, limit: int
) -> None:
    """Raises :class:`QuotaExceeded` when the office holds ``limit`` bookings that start from
    now on, unless this is a retry of a request already stored (that one is answered again)."""
    upcoming = RequestFilter(
        district_code=office.district_code, statuses=OPEN, starts_from_ms=epoch_ms(now)
    )
    if await store.count(upcoming) < limit:
        return
    if idempotency_key and await store.find_by_key(_stored_key(office, idempotency_key)):
        return
    raise QuotaExceeded(limit)


def _stored_key(office: Office, idempotency_key: str) -> str:
    """The idempotency key as stored: a key is one office's own."""
    return f"{office.district_code}:{idempotency_key}"


async def submit(
    payload: SubmitRequest,
    office: Office,
    idempotency_key: str | None,
    store: RequestStore,
    clock: Clock,
    sealer: CredentialsSealer,
) -> tuple[RequestState, bool]:
    """Stores the request with its event in one write (then it is published); (request, created).

    ``office`` is the payload's office, resolved once by the caller; ``sealer`` seals the
    contact for the event.
    """
    request = _new_request(payload, office, idempotency_key, clock())
    try:
        await store.insert(request, request.submitted(sealer.seal_contact(request.contact)))
    except DuplicateSubmission as duplicate:
        if duplicate.existing.fingerprint != request.fingerprint:
            raise IdempotencyConflict(
                "this Idempotency-Key was already used for a different request"
            ) from duplicate
        return duplicate.existing, False
    return request, True


def _new_request(
    payload: SubmitRequest, office: Office, idempotency_key: str | None, now: datetime
) -> RequestState:
    """The request as first stored: a fresh id, the key that finds it again (the office's
    Idempotency-Key, or one of its own), and the fingerprint a retry must match."""
    request_id = str(uuid.uuid4())
    return RequestState(
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
        submitted_at=now,
        idempotency_key=(
            _stored_key(office, idempotency_key) if idempotency_key else f"auto:{request_id}"
        ),
        fingerprint=hashlib.sha256(payload.model_dump_json().encode()).hexdigest(),
    )


async def cancel(
    request: RequestState, by: Principal, store: RequestStore, clock: Clock
) -> RequestState:
    """Cancels a request (harmless when already cancelled); the allocator frees the room, or
    what is left of its window when the meeting is under way. A rejected request or a meeting
    that is over cannot be cancelled (:class:`NotCancellable`).

    The event says only whether an office or an operator cancelled (it is public); the audit
    entry, in the same write, names who (a person, an operator's or an office's token)."""
    if request.status.refuses_cancel:
        raise NotCancellable("a rejected request cannot be cancelled")
    now = clock()
    if request.status is not Status.cancelled and request.ends_at <= now:
        raise NotCancellable("the meeting has already ended; there is nothing left to cancel")
    entry = AuditRecorded(
        actor=Actor.of(by),
        action=AuditAction.request_cancel,
        target=Target(kind="request", id=request.request_id),
        provinces=(request.province_code,),
        before=request.status.value,
        after=Status.cancelled.value,
        detail=f"{request.district_code}: {request.title}"[:2000],
        at=now,
    )
    updated = await store.cancel(request.cancelled(by=by.role.value, at=now), entry)
    return updated or request


def view(request: RequestState, sealer: CredentialsSealer) -> RequestView:
    """The request as its owner sees it: the passcode is opened here, and only here. Sealed
    with a key that is no longer configured (rotated out), it cannot be opened: the view says
    so (:data:`KEY_RETIRED`) instead of failing."""
    assignment = None
    if (stored := request.visible_assignment) is not None:
        try:
            credentials = sealer.open(stored.sealed_credentials)
        except CredentialsSealError:
            log.error("credentials.unavailable", request_id=request.request_id, why=KEY_RETIRED)
            assignment = AssignmentView(
                meeting_id=stored.meeting_id,
                join_url=stored.join_url,
                passcode=None,
                capacity=stored.capacity,
                credentials_unavailable=KEY_RETIRED,
            )
        else:
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
