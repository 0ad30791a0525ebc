"""What the routes and the projection use, made once by the composition root."""

from __future__ import annotations

from dataclasses import dataclass

from aio_pika.abc import AbstractRobustConnection

from vcs_intake.schemas import Health
from vcs_intake.store import MongoRequestStore
from vcs_shared.credentials import CredentialsSealer
from vcs_shared.outbox import OutboxRelay


@dataclass(frozen=True, slots=True)
class Container:
    store: MongoRequestStore
    relay: OutboxRelay
    sealer: CredentialsSealer
    connection: AbstractRobustConnection

    async def health(self) -> Health:
        try:
            await self.store.ping()
            store = "up"
        except Exception:  # any failure to ping means "not reachable" to a health check
            store = "down"
        broker = "down" if self.connection.is_closed else "up"
        outbox = "publishing" if self.relay.healthy else "backlog"
        ok = store == "up" and broker == "up"
        return Health(status="ok" if ok else "degraded", broker=broker, store=store, outbox=outbox)
