"""``/v1/admin``: what operators do to the running system. All admin routes live on this router,
so one dependency on it (the operator role) guards them all.

Dead letters: the same list and replay as ``vcs dlq`` (both use
:mod:`vcs_shared.deadletters`), over the intake's own broker connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Annotated, Any, Literal, TypeVar, get_args

import aio_pika
from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, Field, model_validator

from vcs_shared.deadletters import DeadLetters
from vcs_shared.http_auth import require_operator

router = APIRouter(
    prefix="/v1/admin",
    tags=["admin"],
    dependencies=[Depends(require_operator)],
    responses={
        401: {"description": "No valid bearer token"},
        403: {"description": "The token is not an operator's"},
    },
)

Service = Literal["allocator", "notifier", "intake"]
ALL_SERVICES: tuple[Service, ...] = get_args(Service)
BROKER_TIMEOUT = 10.0

T = TypeVar("T")


def get_dead_letters(request: Request) -> DeadLetters:
    letters: DeadLetters = request.app.state.dead_letters
    return letters


DeadLettersDep = Annotated[DeadLetters, Depends(get_dead_letters)]


class DeadLetterView(BaseModel):
    service: Service
    message_id: str | None
    event_type: str | None = Field(description="CloudEvents type, if the body is one")
    routing_key: str = Field(description="The routing key it was first published with")
    reason: str | None = Field(description="Why it was dead-lettered (poison reason or x-death)")
    deaths: list[dict[str, Any]] = Field(description="The broker's x-death history")


class ReplayCommand(BaseModel):
    """Replay one message (``message_id``) or every one (``all``), of one service or of all."""

    model_config = {"extra": "forbid"}

    service: Service | None = None
    message_id: str | None = Field(default=None, min_length=1, max_length=200)
    all: bool = False

    @model_validator(mode="after")
    def _one_target(self) -> ReplayCommand:
        if (self.message_id is None) == (not self.all):
            raise ValueError("give either message_id or all=true")
        return self


class ReplayOutcome(BaseModel):
    service: Service
    replayed: list[str | None]
    left: int = Field(description="Dead letters still in this service's DLQ")


async def _on_broker(operation: Awaitable[T]) -> T:
    """The broker must answer within a bound, or the operator gets a 503 to retry."""
    try:
        async with asyncio.timeout(BROKER_TIMEOUT):
            return await operation
    except (TimeoutError, ConnectionError, aio_pika.exceptions.AMQPError) as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, detail=f"broker unavailable: {exc!r}"
        ) from exc


@router.get(
    "/dead-letters",
    response_model=list[DeadLetterView],
    responses={503: {"description": "The broker is unavailable"}},
)
async def list_dead_letters(
    letters: DeadLettersDep,
    service: Service | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DeadLetterView]:
    """The dead letters of one service (or all), oldest first; listing changes nothing."""
    views: list[DeadLetterView] = []
    for name in (service,) if service else ALL_SERVICES:
        found = await _on_broker(letters.peek(name, limit=limit))
        views.extend(DeadLetterView.model_validate(letter.as_dict()) for letter in found)
    return views


@router.post(
    "/dead-letters/replay",
    response_model=list[ReplayOutcome],
    responses={
        404: {"description": "No dead letter with this message id"},
        503: {"description": "The broker is unavailable"},
    },
)
async def replay_dead_letters(
    command: ReplayCommand, letters: DeadLettersDep
) -> list[ReplayOutcome]:
    """Republishes to the service's own queue, then drops the dead-letter copy."""
    outcomes: list[ReplayOutcome] = []
    for name in (command.service,) if command.service else ALL_SERVICES:
        result = await _on_broker(letters.replay(name, command.message_id))
        outcomes.append(ReplayOutcome(service=name, replayed=result.replayed, left=result.left))
    if command.message_id is not None and not any(o.replayed for o in outcomes):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no dead letter with this id")
    return outcomes
