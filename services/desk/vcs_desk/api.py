"""The desk's internal API: what the intake forwards to it, for operators only.

Reached only through the intake, with an internal token; scoped to the
caller's provinces (:mod:`vcs_shared.scope`). ``vcs dlq`` calls the same
endpoints through the intake.

* ``GET  /v1/admin/dead-letters?service=&limit=`` — the caller's dead letters.
* ``POST /v1/admin/dead-letters/replay`` — replay one (``message_id``) or all,
  poison only with ``include_poison``.
* ``GET  /healthz`` — open: whether the broker and the store are reachable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar, get_args

import aio_pika
from fastapi import Depends, FastAPI, HTTPException, Query, Request, status
from pydantic import BaseModel, Field, model_validator

from vcs_desk.audit_api import AuditLogDep
from vcs_desk.deadletters import DeadLetters
from vcs_shared.access_log import AccessLog
from vcs_shared.audit import Actor, AuditAction, AuditRecorded, Target
from vcs_shared.auth import Authenticator, Principal
from vcs_shared.health import HealthCheck, health_router
from vcs_shared.http_auth import (
    OperatorPrincipal,
    OperatorScope,
    not_in_scope,
    operator_router,
)
from vcs_shared.scope import Scope

Service = Literal["allocator", "notifier", "intake", "desk"]
ALL_SERVICES: tuple[Service, ...] = get_args(Service)
BROKER_TIMEOUT = 10.0

T = TypeVar("T")

router = operator_router(
    "/v1/admin", tags=["admin"], responses={503: {"description": "The broker is unavailable"}}
)


def get_dead_letters(request: Request) -> DeadLetters:
    letters: DeadLetters = request.app.state.dead_letters
    return letters


DeadLettersDep = Annotated[DeadLetters, Depends(get_dead_letters)]


class DeadLetterView(BaseModel):
    service: Service
    message_id: str | None
    event_type: str | None = Field(description="CloudEvents type, if the body is one")
    request_id: str | None = Field(
        default=None, description="The request it is about (the CloudEvent's subject), if any"
    )
    routing_key: str = Field(description="The routing key it was first published with")
    province_code: str | None = Field(description="The province its routing key names")
    reason: str | None = Field(description="Why it was dead-lettered, on one line")
    poison: bool = Field(description="It can never be handled; replayed only when asked")
    deaths: list[dict[str, Any]] = Field(description="The broker's x-death history")


class ReplayCommand(BaseModel):
    """Replay one message (``message_id``) or every one (``all``), of one service or of all."""

    model_config = {"extra": "forbid"}

    service: Service | None = None
    message_id: str | None = Field(default=None, min_length=1, max_length=200)
    all: bool = False
    include_poison: bool = Field(
        default=False, description="Replay poison too (it will only be dead-lettered again)"
    )

    @model_validator(mode="after")
    def _one_target(self) -> ReplayCommand:
        if (self.message_id is None) == (not self.all):
            raise ValueError("give either message_id or all=true")
        return self


class ReplayOutcome(BaseModel):
    service: Service
    replayed: list[str | None]
    skipped_poison: list[str | None] = Field(
        description="Poison left in the DLQ (set include_poison to replay it)"
    )
    left: int = Field(description="The caller's dead letters still in this service's DLQ")


async def _on_broker(operation: Awaitable[T]) -> T:
    """The broker must answer within a bound, or the operator gets a 503 to retry."""
    try:
        async with asyncio.timeout(BROKER_TIMEOUT):
            return await operation
    except (TimeoutError, ConnectionError, aio_pika.exceptions.AMQPError) as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, detail=f"broker unavailable: {exc!r}"
        ) from exc


@router.get("/dead-letters", response_model=list[DeadLetterView])
async def list_dead_letters(
    letters: DeadLettersDep,
    scope: OperatorScope,
    service: Service | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DeadLetterView]:
    """The caller's dead letters of one service (or all), oldest first; listing changes nothing."""
    views: list[DeadLetterView] = []
    for name in (service,) if service else ALL_SERVICES:
        found = await _on_broker(letters.peek(name, scope, limit=limit))
        views.extend(DeadLetterView.model_validate(letter.as_dict()) for letter in found)
    return views


@router.post(
    "/dead-letters/replay",
    response_model=list[ReplayOutcome],
    responses={
        404: {"description": "No dead letter of the caller's provinces with this message id"},
        409: {"description": "That dead letter is poison and include_poison was not set"},
    },
)
async def replay_dead_letters(
    command: ReplayCommand,
    letters: DeadLettersDep,
    scope: OperatorScope,
    principal: OperatorPrincipal,
    audit_log: AuditLogDep,
) -> list[ReplayOutcome]:
    """Republishes to the one service queue each came from, with its original routing key,
    then drops the dead-letter copy. Poison stays unless ``include_poison``. A replay that
    put anything back is one entry of the audit log."""
    outcomes: list[ReplayOutcome] = []
    for name in (command.service,) if command.service else ALL_SERVICES:
        result = await _on_broker(
            letters.replay(name, scope, command.message_id, include_poison=command.include_poison)
        )
        outcomes.append(
            ReplayOutcome(
                service=name,
                replayed=result.replayed,
                skipped_poison=result.skipped_poison,
                left=result.left,
            )
        )
    if command.message_id is not None and not any(o.replayed for o in outcomes):
        if any(o.skipped_poison for o in outcomes):
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                detail=f"{command.message_id} is poison; set include_poison to replay it anyway",
            )
        raise not_in_scope("dead letter")
    if any(o.replayed for o in outcomes):
        await audit_log.record(_replay_entry(command, outcomes, principal, scope))
    return outcomes


def _replay_entry(
    command: ReplayCommand, outcomes: list[ReplayOutcome], principal: Principal, scope: Scope
) -> AuditRecorded:
    replayed = [f"{o.service}:{i}" for o in outcomes for i in o.replayed]
    skipped = sum(len(o.skipped_poison) for o in outcomes)
    target = command.message_id or f"all of {command.service or 'every service'}"
    return AuditRecorded(
        actor=Actor.of(principal),
        action=AuditAction.dead_letter_replay,
        target=Target(kind="dead_letter", id=target),
        provinces=() if scope.national else tuple(sorted(scope.provinces)),
        after=f"replayed {len(replayed)}: {', '.join(replayed)}"[:2000],
        detail=f"poison left: {skipped}" + (", poison included" if command.include_poison else ""),
        at=datetime.now(UTC),
    )


def create_app(letters: DeadLetters, authenticator: Authenticator, health: HealthCheck) -> FastAPI:
    """The desk's internal app (the composition root passes in what it works with)."""
    app = FastAPI(
        title="DOPA VCS desk (internal)",
        version="1",
        description=(
            "The operators' desk. Internal: reached through the intake, which forwards "
            "/v1/admin/dead-letters* with an internal token."
        ),
    )
    app.add_middleware(AccessLog)
    app.state.dead_letters = letters
    app.state.authenticator = authenticator
    app.state.health = health
    app.include_router(router)
    app.include_router(health_router)
    return app
