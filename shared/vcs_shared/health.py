"""What an internal API's ``/healthz`` reports: whether the store and the broker answer."""

from __future__ import annotations

import asyncio

from aio_pika.abc import AbstractRobustConnection
from pymongo.asynchronous.database import AsyncDatabase

from vcs_shared.broker import broker_connected
from vcs_shared.store import Document

PING_TIMEOUT = 2.0


async def reachability(
    database: AsyncDatabase[Document], connection: AbstractRobustConnection
) -> dict[str, str]:
    """``{"status": "ok"|"degraded", "broker": "up"|"down", "store": "up"|"down"}``."""
    try:
        async with asyncio.timeout(PING_TIMEOUT):  # a frozen store never answers at all
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
