"""The status projection: the intake follows the other services' events.

Each update only moves a request forward from the states it may come from, so
replaying or reordering events never moves a status back (a late
``room.assigned`` does not undo ``delivered`` or ``cancelled``). The updates
are plain ``$set``s, idempotent by nature.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

from vcs_intake.store import RequestStore
from vcs_shared.broker import Handler
from vcs_shared.envelope import Envelope
from vcs_shared.events import (
    CredentialsDelivered,
    CredentialsFailed,
    Event,
    RequestRejected,
    RoomAssigned,
    RoomReleased,
)


async def on_room_assigned(envelope: Envelope, store: RequestStore) -> None:
    event = envelope.event
    assert isinstance(event, RoomAssigned)
    assignment = {
        "meeting_id": event.meeting_id,
        "capacity": event.capacity,
        "join_url": event.join_url,
        "pool": event.pool,
        "sealed_credentials": event.sealed_credentials,
    }
    # One write in the usual case (still submitted); a request already further along
    # (delivered first, by reordering) gets the assignment without its status moving back.
    moved = await store.apply(
        event.request_id, ("submitted",), {"status": "assigned", "assignment": assignment}
    )
    if not moved:
        await store.set_fields(
            event.request_id, ("cancelled", "rejected"), {"assignment": assignment}
        )


async def on_request_rejected(envelope: Envelope, store: RequestStore) -> None:
    event = envelope.event
    assert isinstance(event, RequestRejected)
    rejection = {
        "reason": event.reason.value,
        "message_th": event.message_th,
        "message_en": event.message_en,
    }
    await store.apply(
        event.request_id, ("submitted",), {"status": "rejected", "rejection": rejection}
    )


async def on_credentials_delivered(envelope: Envelope, store: RequestStore) -> None:
    event = envelope.event
    assert isinstance(event, CredentialsDelivered)
    await store.apply(
        event.request_id,
        ("submitted", "assigned"),
        {"status": "delivered", "delivery": {"at": event.delivered_at}},
    )


async def on_credentials_failed(envelope: Envelope, store: RequestStore) -> None:
    event = envelope.event
    assert isinstance(event, CredentialsFailed)
    await store.apply(
        event.request_id,
        ("submitted", "assigned"),
        {"status": "delivery_failed", "delivery_error": event.error},
    )


async def on_room_released(envelope: Envelope, store: RequestStore) -> None:
    event = envelope.event
    assert isinstance(event, RoomReleased)
    await store.set_fields(event.request_id, (), {"released_meeting_id": event.meeting_id})


def handler_table(store: RequestStore) -> Mapping[type[Event], Handler]:
    """The one explicit event-to-handler table of the intake's projection."""
    return {
        RoomAssigned: partial(on_room_assigned, store=store),
        RequestRejected: partial(on_request_rejected, store=store),
        CredentialsDelivered: partial(on_credentials_delivered, store=store),
        CredentialsFailed: partial(on_credentials_failed, store=store),
        RoomReleased: partial(on_room_released, store=store),
    }
