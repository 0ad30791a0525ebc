"""``GET /v1/admin/feed``: the events of the caller's provinces as server-sent events.

Each event: ``event:`` its name (``room.assigned``), ``id:`` its CloudEvent id,
``data:`` the CloudEvent JSON without secrets. A browser's ``EventSource``
reconnects by itself with ``Last-Event-ID`` and gets exactly what it missed.
Also: ``?province=47`` (one of the caller's), ``?since=<ISO time>`` (start from
that moment rather than from now; ``Last-Event-ID`` wins). If the feed cannot
resume after the id given (older than the stream keeps), the first event is
``reset`` (no ``id:``), and the feed goes on from now.

The intake forwards it (streaming, no read timeout). Each answer ends when the
internal token it came with expires (a minute): the browser reconnects with
``Last-Event-ID`` and misses nothing, and the intake has checked the caller again.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

import aio_pika
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request, status
from pydantic import AwareDatetime
from pymongo.errors import PyMongoError
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask

from vcs_desk.live_feed import LiveFeed, Subscription
from vcs_shared.http_auth import (
    OperatorPrincipal,
    OperatorScope,
    ProvinceFilter,
    require_operator,
)

PING_SECONDS = 15
RETRY_MS = 1000
"""How soon a browser reconnects after losing the feed."""

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(require_operator)])


def _live_feed(request: Request) -> LiveFeed:
    feed: LiveFeed = request.app.state.live_feed
    return feed


LiveFeedDep = Annotated[LiveFeed, Depends(_live_feed)]


@router.get(
    "/feed",
    response_class=EventSourceResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "The live feed"},
        503: {"description": "The broker or the store is unavailable"},
    },
)
async def live_feed(
    feed: LiveFeedDep,
    principal: OperatorPrincipal,
    scope: OperatorScope,
    province: ProvinceFilter,
    last_event_id: Annotated[
        str | None,
        Header(alias="Last-Event-ID", max_length=200, description="Resume after this event"),
    ] = None,
    since: Annotated[
        AwareDatetime | None,
        Query(description="Start from events published at or after this moment"),
    ] = None,
) -> EventSourceResponse:
    """The events of the caller's provinces, live, resumable with ``Last-Event-ID``."""
    try:
        subscription = await feed.subscribe(
            scope, province=province, last_event_id=last_event_id, since=since
        )
    except (aio_pika.exceptions.AMQPError, ConnectionError, TimeoutError, PyMongoError) as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, detail=f"the feed is unavailable: {exc!r}"
        ) from exc
    return EventSourceResponse(
        _server_sent(subscription, last_event_id, until=principal.expires_at),
        ping=PING_SECONDS,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        background=BackgroundTask(subscription.close),
    )


async def _server_sent(
    subscription: Subscription, last_event_id: str | None, *, until: datetime
) -> AsyncIterator[ServerSentEvent]:
    yield ServerSentEvent(retry=RETRY_MS, comment="DOPA VCS live feed")
    if subscription.resume_failed:
        notice = {"last_event_id": last_event_id, "reason": "unknown or expired event id"}
        yield ServerSentEvent(data=json.dumps(notice), event="reset")
    async for event in subscription.events(until=until):
        yield ServerSentEvent(data=event.data, event=event.name, id=event.event_id)


def install_feed(app: FastAPI, feed: LiveFeed) -> None:
    """Serves the feed from the desk's internal app (called by its composition root)."""
    app.state.live_feed = feed
    app.include_router(router)
