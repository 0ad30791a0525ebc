"""The ``/v1`` routes: thin, everything they need arrives through ``Annotated`` dependencies."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query, Response, status
from fastapi.responses import JSONResponse

from vcs_intake import listing, requests
from vcs_intake.auth_deps import VisibleRequest
from vcs_intake.container import ContainerDep
from vcs_intake.schemas import Health, RequestPage, RequestView, SubmitAccepted, SubmitRequest
from vcs_shared.http_auth import CurrentPrincipal
from vcs_shared.paging import decode_cursor, encode_cursor
from vcs_shared.request_status import Status
from vcs_shared.thaitime import CalendarDay

router = APIRouter()

Responses = dict[int | str, dict[str, Any]]

UNAUTHENTICATED: Responses = {
    401: {"description": "No valid bearer token (missing, expired, revoked)"}
}
NOT_VISIBLE: Responses = {404: {"description": "No such request, or not one this caller may see"}}
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="Retrying with the same key returns the first request instead of a new one",
    ),
]


@router.get("/healthz", response_model=Health, tags=["operations"])
async def healthz(container: ContainerDep, response: Response) -> Health:
    """200 once the broker and the store are reachable, 503 otherwise."""
    health = await container.health()
    if health.status != "ok":
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return health


@router.post(
    "/v1/requests",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SubmitAccepted,
    responses={
        200: {"model": SubmitAccepted, "description": "Replay of an earlier submit"},
        **UNAUTHENTICATED,
        403: {"description": "The token may not submit for this district"},
        429: {
            "description": (
                "The office already holds the most upcoming bookings it may "
                "(`VCS_MAX_OPEN_REQUESTS_PER_OFFICE`); the body names the limit"
            )
        },
        503: {
            "description": (
                "The store did not answer in time (`outcome: unknown`): the request may or may "
                "not have been stored; or the intake is busy (`outcome: not_stored`, more than "
                "VCS_MAX_SUBMITS_IN_FLIGHT submits under way): nothing was stored. Either way, "
                "retry after Retry-After seconds with the same Idempotency-Key"
            )
        },
    },
    tags=["requests"],
)
async def submit_request(
    payload: SubmitRequest,
    principal: CurrentPrincipal,
    container: ContainerDep,
    idempotency_key: IdempotencyKey = None,
) -> SubmitAccepted | JSONResponse:
    """Accepts a request; it is stored before this answers, and the room follows by events.

    An office submits for its own district only, at most `VCS_MAX_OPEN_REQUESTS_PER_OFFICE`
    upcoming bookings at once; an operator for any office of its provinces. Always send an
    `Idempotency-Key`: a retry with it never makes a second request.
    """
    try:
        request, created = await requests.accept(
            principal,
            payload,
            idempotency_key,
            container.store,
            container.clock,
            container.rules,
            container.sealer,
        )
    except requests.InvalidRequest as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=[
                {"loc": ["body", problem.field], "msg": problem.message, "type": problem.kind}
                for problem in exc.problems
            ],
        ) from exc
    except requests.QuotaExceeded as exc:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail={
                "type": "quota_exceeded",
                "limit": exc.limit,
                "setting": "VCS_MAX_OPEN_REQUESTS_PER_OFFICE",
                "msg": str(exc),
            },
        ) from exc
    except requests.NotPermitted as exc:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail=f"this token may not submit for district {exc.district_code}",
        ) from exc
    except requests.IdempotencyConflict as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=[
                {
                    "loc": ["header", "Idempotency-Key"],
                    "msg": str(exc),
                    "type": "idempotency_conflict",
                }
            ],
        ) from exc
    accepted = SubmitAccepted(request_id=request.request_id, status=request.status)
    if not created:
        return JSONResponse(accepted.model_dump(mode="json"), status_code=status.HTTP_200_OK)
    return accepted


@router.get(
    "/v1/requests",
    response_model=RequestPage,
    responses={**UNAUTHENTICATED, 422: {"description": "A bad filter or cursor"}},
    tags=["requests"],
)
async def list_requests(
    principal: CurrentPrincipal,
    container: ContainerDep,
    status_: Annotated[
        list[Status] | None,
        Query(alias="status", description="Only these statuses (repeat the parameter for more)"),
    ] = None,
    day: Annotated[
        CalendarDay,
        Query(alias="date", description="Only meetings starting on this day (Asia/Bangkok)"),
    ] = None,
    cursor: Annotated[
        str | None, Query(max_length=200, description="`next` of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> RequestPage:
    """The caller's requests, newest first: an office its own, an operator its provinces'.
    No passcodes in lists; read a request by id for its credentials."""
    try:
        after = decode_cursor(cursor) if cursor else None
    except ValueError as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=[{"loc": ["query", "cursor"], "msg": str(exc), "type": "value_error"}],
        ) from exc
    which = listing.visible_to(principal, statuses=tuple(status_ or ()), day=day)
    found = await container.store.newest(which, after=after, limit=limit + 1)
    shown = found[:limit]
    return RequestPage(
        items=[listing.summary(listed.request) for listed in shown],
        next=encode_cursor(shown[-1].key) if len(found) > limit else None,
    )


@router.get(
    "/v1/requests/{request_id}",
    response_model=RequestView,
    responses={**UNAUTHENTICATED, **NOT_VISIBLE},
    tags=["requests"],
)
async def read_request(request: VisibleRequest, container: ContainerDep) -> RequestView:
    """The request's status and, once assigned, its credentials (its office and its region's
    operators only)."""
    return requests.view(request, container.sealer)


@router.post(
    "/v1/requests/{request_id}/cancel",
    response_model=RequestView,
    responses={
        **UNAUTHENTICATED,
        **NOT_VISIBLE,
        409: {
            "description": (
                "The request cannot be cancelled: it was rejected, or its meeting has ended "
                "(`detail` says which)"
            )
        },
    },
    tags=["requests"],
)
async def cancel_request(
    request: VisibleRequest, principal: CurrentPrincipal, container: ContainerDep
) -> RequestView:
    """Cancels the request and frees its room (a meeting under way: the rest of its window);
    cancelling twice is harmless."""
    try:
        updated = await requests.cancel(request, principal, container.store, container.clock)
    except requests.NotCancellable as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from exc
    return requests.view(updated, container.sealer)
