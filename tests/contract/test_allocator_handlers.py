"""The allocator's handler on the real store, in this process: it decides by the clock it is
given, and its decision and the event announcing it are one document (the outbox), waiting
for a relay to publish it."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import AsyncMongoClient

from tests.support.events import request_submitted
from vcs_allocator.domain import AllocationPolicy, DecisionOutcome, Room
from vcs_allocator.handlers import HANDLERS, AllocatorDeps
from vcs_allocator.store import MongoReservationStore
from vcs_shared.credentials import CredentialsSealer
from vcs_shared.envelope import Envelope
from vcs_shared.events import RoomAssigned
from vcs_shared.store import Document, database_name

pytestmark = pytest.mark.contract

NOW = datetime(2020, 4, 13, 2, 0, tzinfo=UTC)  # the circular's day: long past by the real clock


async def test_the_allocator_decides_by_its_clock_and_stores_its_event_with_the_decision(
    mongo: AsyncMongoClient[Document], namespace: str, credentials_keys: str
) -> None:
    store = MongoReservationStore(mongo[database_name(namespace, "allocator")])
    await store.ensure_indexes()
    await store.replace_rooms([Room("111111111", 300, "47", "pw", "https://z.example/j/1?pwd=pw")])
    deps = AllocatorDeps(
        store=store,
        sealer=CredentialsSealer(credentials_keys),
        policy=AllocationPolicy(),
        clock=lambda: NOW,
    )
    event = request_submitted(str(uuid.uuid4()), NOW + timedelta(days=1), participants=100)
    handler = HANDLERS.bind(deps).handler_for(event)
    assert handler is not None

    await handler(Envelope(str(uuid.uuid4()), event, NOW, "/dopa-vcs/intake", "corr-1"))

    decision = await store.decision(event.request_id)
    assert decision is not None
    assert decision.outcome is DecisionOutcome.assigned  # not "starts in the past"
    assert decision.decided_at == NOW
    stored = await store.decisions.find_one({"_id": event.request_id})
    assert stored is not None
    [entry] = stored["outbox"]
    assert stored["outbox_pending"] is True  # this process publishes nothing
    assert entry["routing_key"] == "room.assigned.47.4701"
    body = json.loads(entry["body"])
    assert body["type"] == RoomAssigned.cloudevent_type()
    assert body["correlationid"] == "corr-1"
    assert body["data"]["meeting_id"] == "111111111"
