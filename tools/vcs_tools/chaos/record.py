"""What the soak watches, through the public contracts only: events, mails, dead letters.

* Events: a durable quorum queue of the soak's own bound to ``<ns>.events`` with
  ``#``, read over a robust connection, so a broker outage loses nothing the
  system published (the queue and its persistent messages outlive the node's
  restart) and a copy published twice is seen twice.
* Mails: the ``.eml`` files the SMTP sink wrote, read at the end.
* Dead letters: the operators' API (``GET /v1/admin/dead-letters``) on the front door.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from email import message_from_binary_file
from email.policy import default
from pathlib import Path

import aio_pika
import httpx
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from vcs_shared.broker import declare_topology
from vcs_shared.topology import Topology
from vcs_tools.chaos.check import SeenDeadLetter, SeenEvent, SeenMail


class EventRecorder:
    """Every event published in the namespace, in arrival order, copies included."""

    def __init__(self, connection: AbstractRobustConnection) -> None:
        self._connection = connection
        self.events: list[SeenEvent] = []
        self._arrived = asyncio.Event()

    @classmethod
    async def start(cls, amqp_url: str, topology: Topology) -> EventRecorder:
        connection = await aio_pika.connect_robust(amqp_url, reconnect_interval=1)
        recorder = cls(connection)
        channel = await connection.channel()
        await declare_topology(channel, topology)  # the services declare the same at start
        queue = await channel.declare_queue(
            f"{topology.namespace}.chaos-recorder",
            durable=True,
            arguments={"x-queue-type": "quorum"},
        )
        await queue.bind(topology.exchange, routing_key="#")
        await queue.consume(recorder._on_message)
        return recorder

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        async with message.process():
            cloud_event = json.loads(message.body)
            self.events.append(
                SeenEvent(
                    event_id=str(cloud_event.get("id")),
                    name=(message.routing_key or "").rsplit(".", 2)[0],
                    request_id=str(cloud_event.get("subject")),
                    data=cloud_event.get("data") or {},
                )
            )
            self._arrived.set()

    async def quiet(self, seconds: float) -> None:
        """Returns once no event arrived for ``seconds``."""
        while True:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), timeout=seconds)
            except TimeoutError:
                return

    async def close(self) -> None:
        await self._connection.close()


def read_mails(folder: Path) -> list[SeenMail]:
    """Each mail's request (``X-VCS-Request-Id``) and kind (the Message-ID's first part,
    ``<assigned.<request id>@…>``)."""
    mails: list[SeenMail] = []
    for path in sorted(folder.glob("*.eml")):
        with path.open("rb") as file:
            mail = message_from_binary_file(file, policy=default)
        request_id = str(mail.get("X-VCS-Request-Id", ""))
        kind = str(mail.get("Message-ID", "")).strip("<>").split(".", 1)[0]
        mails.append(SeenMail(request_id, kind, arrived=path.stat().st_mtime))
    return mails


async def mails_quiet(folder: Path, seconds: float) -> None:
    """Returns once no new mail arrived for ``seconds``."""

    def mails() -> int:
        return len(list(folder.glob("*.eml")))

    count = -1
    while (now := await asyncio.to_thread(mails)) != count:
        count = now
        await asyncio.sleep(seconds)


async def dead_letters(http: httpx.AsyncClient, token: str) -> list[SeenDeadLetter]:
    answer = await http.get(
        "/v1/admin/dead-letters",
        params={"limit": 1000},
        headers={"Authorization": f"Bearer {token}"},
    )
    answer.raise_for_status()
    return [
        SeenDeadLetter(
            message_id=letter.get("message_id"),
            reason=letter.get("reason"),
            poison=bool(letter.get("poison")),
            request_id=letter.get("request_id"),
        )
        for letter in answer.json()
    ]


async def final_statuses(
    http: httpx.AsyncClient,
    token: str,
    request_ids: Sequence[str],
    *,
    final: frozenset[str],
    stall_after: float,
) -> dict[str, str | None]:
    """Each request's status over HTTP, read again until all are final or none became final
    for ``stall_after`` seconds."""
    statuses: dict[str, str | None] = dict.fromkeys(request_ids)
    gate = asyncio.Semaphore(8)
    headers = {"Authorization": f"Bearer {token}"}

    async def read(request_id: str) -> None:
        async with gate:
            try:
                answer = await http.get(f"/v1/requests/{request_id}", headers=headers)
            except httpx.HTTPError:
                return
            if answer.status_code == 200:
                statuses[request_id] = str(answer.json()["status"])

    loop = asyncio.get_running_loop()
    progress_at = loop.time()
    while True:
        open_ids = [i for i, s in statuses.items() if s not in final]
        if not open_ids:
            return statuses
        before = len(open_ids)
        await asyncio.gather(*(read(i) for i in open_ids))
        if sum(1 for i in open_ids if statuses[i] not in final) < before:
            progress_at = loop.time()
        elif loop.time() - progress_at > stall_after:
            return statuses
        await asyncio.sleep(1)
