"""What the routes and the projection use, made once by the composition root."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import pymongo
from aio_pika.abc import AbstractRobustConnection
from fastapi import Depends, Request

from vcs_intake.domain import BookingRules
from vcs_intake.schemas import Health
from vcs_intake.store import MongoRequestStore
from vcs_shared.broker import broker_connected
from vcs_shared.clock import Clock, utc_now
from vcs_shared.credentials import CredentialsSealer
from vcs_shared.supervision import read_status

PING_TIMEOUT = 2.0


@dataclass(frozen=True, slots=True)
class Container:
    store: MongoRequestStore
    sealer: CredentialsSealer
    connection: AbstractRobustConnection
    rules: BookingRules = field(default_factory=BookingRules)
    clock: Clock = utc_now
    supervisor_status_file: Path | None = None

    async def health(self) -> Health:
        try:
            with pymongo.timeout(PING_TIMEOUT):  # not a cancellation: see vcs_shared.health
                await self.store.ping()
            store = "up"
        except Exception:  # any failure to ping means "not reachable" to a health check
            store = "down"
        broker = "up" if broker_connected(self.connection) else "down"
        outbox = "publishing" if self.store.relay.healthy else "backlog"
        ok = store == "up" and broker == "up"
        status_file = self.supervisor_status_file
        supervisor = read_status(status_file) if status_file is not None else None
        return Health(
            status="ok" if ok else "degraded",
            broker=broker,
            store=store,
            outbox=outbox,
            supervisor=supervisor,
        )


async def get_container(request: Request) -> Container:
    """Async although it awaits nothing: FastAPI runs a plain function dependency in a worker
    thread, a thread hop per request for reading one attribute."""
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]
