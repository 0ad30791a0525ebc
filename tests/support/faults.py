"""What the fault tests check after a fault: every accepted request final, nothing twice.

"Nothing twice" is counted where it would show: the services' own documents
(one request, one decision, one delivery per request id), the mails the SMTP
sink received, and the distinct CloudEvents ids per event type and request on
a durable audit queue bound to every event. At-least-once publishing may put
the same event (same id) on the broker twice; a second *different* event for
the same fact would be a duplicate, and is what is counted.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import aio_pika
import httpx
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue
from pymongo import AsyncMongoClient

from tests.support.requests import request_body, tomorrow_at
from tests.support.waiting import eventually
from vcs_shared.broker import Topology
from vcs_shared.store import Document, database_name
from vcs_tools.devstack import SmtpSink

FINAL = ("delivered", "rejected", "cancelled", "delivery_failed")


def spread_request(i: int, **overrides: Any) -> dict[str, Any]:
    """The i-th of a batch of requests for Mueang Sakon Nakhon, spread over days and hours."""
    return request_body(
        "4701",
        starts_at=tomorrow_at(8 + (i % 5) * 2, days=1 + i // 5),
        hours=1,
        participants=100,
        **overrides,
    )


async def fail_until(
    queue: AbstractQueue, done: Callable[[], Awaitable[bool]], *, timeout: float, what: str
) -> None:
    """A stand-in consumer of ``queue`` whose handler always fails: it hands every message back
    (nack, requeue) until ``done`` (the queue's delivery limit dead-lettering one, say)."""

    async def hand_back(message: AbstractIncomingMessage) -> None:
        await message.nack(requeue=True)

    failing = await queue.consume(hand_back)
    try:
        await eventually(done, timeout=timeout, what=what)
    finally:
        await queue.cancel(failing)


async def submit_all(http: httpx.AsyncClient, bodies: Iterable[dict[str, Any]]) -> list[str]:
    """Submits concurrently; every one must be accepted (202). Returns the request ids."""
    responses = await asyncio.gather(*(http.post("/v1/requests", json=b) for b in bodies))
    refused = [(r.status_code, r.text) for r in responses if r.status_code != 202]
    assert not refused, refused
    return [r.json()["request_id"] for r in responses]


async def statuses(http: httpx.AsyncClient, request_ids: Iterable[str]) -> dict[str, str]:
    """The statuses readable now; a poll that loses its keep-alive connection to the server
    closing it (a known race of HTTP keep-alive) just reads fewer this time."""
    responses = await asyncio.gather(
        *(http.get(f"/v1/requests/{rid}") for rid in request_ids), return_exceptions=True
    )
    found: dict[str, str] = {}
    for response in responses:
        if isinstance(response, httpx.TransportError):
            continue
        if isinstance(response, BaseException):
            raise response
        if response.status_code == 200:
            found[response.json()["request_id"]] = response.json()["status"]
    return found


async def wait_all_final(
    http: httpx.AsyncClient, request_ids: list[str], *, timeout: float = 60
) -> dict[str, str]:
    async def all_final() -> dict[str, str] | None:
        found = await statuses(http, request_ids)
        done = {rid: s for rid, s in found.items() if s in FINAL}
        return done if len(done) == len(request_ids) else None

    return await eventually(all_final, timeout=timeout, what=f"{len(request_ids)} final states")


async def declare_audit_queue(channel: AbstractChannel, topology: Topology) -> AbstractQueue:
    """A durable queue bound to every event: unlike an exclusive tap it outlives a broker
    restart, so it misses nothing published while the test's own connection reconnects."""
    queue = await channel.declare_queue(f"{topology.namespace}.audit", durable=True)
    await queue.bind(topology.exchange, routing_key="#")
    return queue


async def drain(queue: AbstractQueue) -> list[dict[str, Any]]:
    """Every CloudEvent on the queue now, acked; waits out the test's own connection still
    reconnecting after a broker outage (the services may have recovered first)."""
    events: list[dict[str, Any]] = []

    async def emptied() -> bool:
        try:
            while (message := await queue.get(no_ack=True, fail=False)) is not None:
                events.append(json.loads(message.body))
        except aio_pika.exceptions.ChannelInvalidStateError:
            return False
        return True

    await eventually(emptied, timeout=30, what="the audit queue drained")
    return events


@dataclass
class Duplicates:
    """Request ids that show something twice (empty when all is well), and what was seen."""

    documents: dict[str, int]
    events: dict[tuple[str, str], int]
    mails: dict[str, int]

    def __bool__(self) -> bool:
        return bool(self.documents or self.events or self.mails)


async def find_duplicates(
    mongo: AsyncMongoClient[Document],
    namespace: str,
    request_ids: list[str],
    events: list[dict[str, Any]],
    smtp_sink: SmtpSink,
) -> Duplicates:
    documents: dict[str, int] = {}
    for service, collection in (
        ("intake", "requests"),
        ("allocator", "decisions"),
        ("notifier", "deliveries"),
    ):
        coll = mongo[database_name(namespace, service)][collection]
        carried: defaultdict[str, int] = defaultdict(int)
        async for document in coll.find({}, {"request_id": 1}):
            carried[str(document.get("request_id"))] += 1
        for rid in request_ids:
            # By the request id each document carries, not by its key: a second document for
            # one request (stored under another key) counts too.
            count = carried[rid]
            if count != 1 or await coll.count_documents({"_id": rid}) != 1:
                documents[f"{service}.{collection}.{rid}"] = count
    ids: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
    for event in events:
        ids[(event["type"], event["subject"])].add(event["id"])
    mails: defaultdict[str, int] = defaultdict(int)
    for mail in smtp_sink.messages:
        if str(mail["Message-ID"]).startswith("<assigned."):
            mails[str(mail["X-VCS-Request-Id"])] += 1
    return Duplicates(
        documents=documents,
        events={key: len(v) for key, v in ids.items() if len(v) > 1},
        mails={rid: n for rid, n in mails.items() if n > 1},
    )


async def count_assignments(
    mongo: AsyncMongoClient[Document], namespace: str, request_ids: list[str]
) -> dict[str, int]:
    """Distinct Meeting IDs holding slots per request: one reservation each, never two."""
    slots = mongo[database_name(namespace, "allocator")]["slots"]
    held: dict[str, int] = {}
    for rid in request_ids:
        held[rid] = len({doc["meeting_id"] async for doc in slots.find({"request_id": rid})})
    return held
