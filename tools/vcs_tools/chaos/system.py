"""The system under the soak: a private RabbitMQ node, and the store, the mail sink and the
services of ``make run`` under the same :class:`~vcs_tools.supervisor.Supervisor`.

The supervisor is driven from the event loop's own thread: its children's death
signal (``PR_SET_PDEATHSIG``) follows the thread that started them, and its calls
are short (``check`` is one round of bookkeeping). A kill or a freeze reaches it
exactly as a real fault would, and it restarts what died as under ``make run``.
"""

from __future__ import annotations

import asyncio
import csv
import secrets
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from vcs_shared.credentials import new_key
from vcs_tools.devstack import (
    SERVICES,
    free_port,
    infrastructure,
    internal_apis,
    service_env,
    service_specs,
)
from vcs_tools.private_files import private_dir
from vcs_tools.rabbitnode import PrivateBroker
from vcs_tools.supervisor import TICK, GaveUp, Supervisor

POOL_FILE = Path(__file__).resolve().parents[3] / "deploy" / "pools" / "region-12.csv"
NAMESPACE = "chaos"


def pool_provinces(pool_file: Path = POOL_FILE) -> frozenset[str]:
    """The provinces whose offices the pool serves (its province pools, not the overflow)."""
    with pool_file.open(newline="", encoding="utf-8") as file:
        return frozenset(row["pool"] for row in csv.DictReader(file) if row["pool"].isdigit())


POOL_PROVINCES = pool_provinces()


@dataclass
class System:
    """Levers and addresses of a running soak system."""

    broker: PrivateBroker
    supervisor: Supervisor
    intake_url: str
    jwt_secret: str
    mail_dir: Path
    gave_up: str | None = None

    async def send(self, name: str, sig: signal.Signals) -> None:
        self.supervisor.send(name, sig)

    async def stop_broker(self) -> None:
        await asyncio.to_thread(self.broker.stop_app)

    async def start_broker(self) -> None:
        await asyncio.to_thread(self.broker.start_app)

    async def watch(self, until: asyncio.Event, *, on_give_up: asyncio.Event) -> None:
        """The supervisor's bookkeeping loop (restarts), as ``vcs run`` does it; when it gives
        up (a crash loop), records why in :attr:`gave_up` and sets ``on_give_up``."""
        while not until.is_set():
            try:
                self.supervisor.check()
            except GaveUp as exc:
                self.gave_up = str(exc)
                on_give_up.set()
                return
            with suppress(TimeoutError):
                await asyncio.wait_for(until.wait(), timeout=TICK)


@asynccontextmanager
async def running_system(
    data_dir: Path, say: Callable[[str], None] = print
) -> AsyncIterator[System]:
    """Starts everything under ``data_dir`` (broker, store, mails, logs); stops it all after."""
    data_dir = private_dir(data_dir)
    broker = await asyncio.to_thread(PrivateBroker(data_dir / "rabbitmq").start)
    try:
        base = infrastructure(data_dir)
        jwt_secret = secrets.token_urlsafe(48)
        port = free_port()
        env = service_env(
            amqp_url=broker.url,
            mongodb_url=base.mongodb_url,
            credentials_keys=new_key(),
            jwt_secret=jwt_secret,
            namespace=NAMESPACE,
            smtp_port=base.smtp_port,
            intake_port=port,
            pool_file=POOL_FILE,
            extra={
                **internal_apis(),
                # the soak's offices book far more than an office would: no quota here
                "VCS_MAX_OPEN_REQUESTS_PER_OFFICE": "100000",
                "VCS_SEND_JOURNAL": data_dir / "notifier" / "sent-mails.jsonl",
            },
        )
        specs = [*base.specs, *service_specs(env, data_dir / "logs")]
        supervisor = Supervisor(specs, say=say)
        with supervisor:
            # blocking while the system starts: nothing else runs yet
            supervisor.start(*(s.name for s in base.specs), within=60)
            supervisor.start(*SERVICES, within=120)
            yield System(
                broker=broker,
                supervisor=supervisor,
                intake_url=f"http://127.0.0.1:{port}",
                jwt_secret=jwt_secret,
                mail_dir=data_dir / "mail",
            )
    finally:
        await asyncio.to_thread(broker.stop)
