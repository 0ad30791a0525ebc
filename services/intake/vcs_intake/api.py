"""The ``/v1`` routes: thin, everything they need arrives through ``Annotated`` dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response, status
from fastapi.responses import JSONResponse

from vcs_intake import requests
from vcs_intake.container import Container
from vcs_intake.schemas import Health, RequestView, SubmitAccepted, SubmitRequest

router = APIRouter()


def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]
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
    responses={200: {"model": SubmitAccepted, "description": "Replay of an earlier submit"}},
    tags=["requests"],
)
async def submit_request(
    payload: SubmitRequest, container: ContainerDep, idempotency_key: IdempotencyKey = None
) -> SubmitAccepted | JSONResponse:
    """Accepts a request; it is stored before this answers, and the room follows by events."""
    try:
        document, created = await requests.submit(
            payload, idempotency_key, container.store, container.relay
        )
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
    accepted = SubmitAccepted(request_id=document["_id"], status=document["status"])
    if not created:
        return JSONResponse(accepted.model_dump(mode="json"), status_code=status.HTTP_200_OK)
    return accepted


@router.get(
    "/v1/requests/{request_id}",
    response_model=RequestView,
    responses={404: {"description": "No such request"}},
    tags=["requests"],
)
async def read_request(request_id: str, container: ContainerDep) -> RequestView:
    """The request's status and, once assigned, its credentials."""
    document = await container.store.get(request_id)
    if document is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such request")
    return requests.view(document, container.sealer)


@router.post(
    "/v1/requests/{request_id}/cancel",
    response_model=RequestView,
    responses={
        404: {"description": "No such request"},
        409: {"description": "The request was rejected and cannot be cancelled"},
    },
    tags=["requests"],
)
async def cancel_request(request_id: str, container: ContainerDep) -> RequestView:
    """Cancels the request and frees its room; cancelling twice is harmless."""
    document = await container.store.get(request_id)
    if document is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such request")
    if document["status"] == "rejected":
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail="a rejected request cannot be cancelled"
        )
    updated = await requests.cancel(document, "office", container.store, container.relay)
    return requests.view(updated, container.sealer)
