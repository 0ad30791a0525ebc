"""What an internal API's ``/healthz`` reports: whether the store and the broker answer.

The allocator, the notifier and the desk serve it the same way (:data:`health_router`, the
check in ``app.state.health``); docker-compose's health checks and start order ask it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pymongo
from aio_pika.abc import AbstractRobustConnection
from fastapi import APIRouter, Request, Response, status
from pymongo.asynchronous.database import AsyncDatabase

from vcs_shared.broker import broker_connected
from vcs_shared.store import Document

PING_TIMEOUT = 2.0


async def reachability(
    database: AsyncDatabase[Document], connection: AbstractRobustConnection
) -> dict[str, str]:
    """``{"status": "ok"|"degraded", "broker": "up"|"down", "store": "up"|"down"}``."""
    try:
        # A frozen store never answers at all. PyMongo's own timeout, never a cancellation:
        # a task cancelled inside server selection can leave the client's topology lock
        # released twice ("Lock is not acquired"), and the client wedged (store_watchdog).
        with pymongo.timeout(PING_TIMEOUT):
            await database.command("ping")
        store = "up"
    except Exception:  # any failure to ping means "not reachable" to a health check
        store = "down"
    broker = "up" if broker_connected(connection) else "down"
    return {
        "status": "ok" if store == broker == "up" else "degraded",
        "broker": broker,
        "store": store,
    }


HealthCheck = Callable[[], Awaitable[dict[str, str]]]

health_router = APIRouter(tags=["operations"])


@health_router.get("/healthz")
async def healthz(request: Request, response: Response) -> dict[str, str]:
    """200 once the broker and the store are reachable, 503 otherwise (no token needed)."""
    check: HealthCheck = request.app.state.health
    health = await check()
    if "down" in health.values():
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return health
