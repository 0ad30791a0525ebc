"""The status projection: the intake follows the other services' events.

Each update moves a request only along the status machine of
:mod:`vcs_intake.domain` (the store's writes are conditional on it), so
replaying or reordering events never moves a status back (a late
``room.assigned`` does not undo ``delivered`` or ``cancelled``). The updates
are plain ``$set``s, idempotent by nature.
"""

from __future__ import annotations

from vcs_intake.domain import Assignment, Rejection
from vcs_intake.store import RequestStore
from vcs_shared.dispatch import HandlerTable
from vcs_shared.envelope import Envelope
from vcs_shared.events import (
    CredentialsDelivered,
    CredentialsFailed,
    RequestRejected,
    RoomAssigned,
    RoomReassigned,
    RoomReleased,
)


async def on_room_assigned(envelope: Envelope[RoomAssigned], store: RequestStore) -> None:
    # A request already further along (delivered first, by reordering) gets the assignment
    # without its status moving back.
    await store.assign(envelope.event.request_id, Assignment.of(envelope.event))


async def on_room_reassigned(envelope: Envelope[RoomReassigned], store: RequestStore) -> None:
    """An operator moved the booking: the request shows the new room (the latest move wins,
    whatever order the events come in)."""
    event = envelope.event
    await store.reassign(event.request_id, Assignment.moved(event), event.reassignment)


async def on_request_rejected(envelope: Envelope[RequestRejected], store: RequestStore) -> None:
    event = envelope.event
    rejection = Rejection(event.reason, event.message_th, event.message_en)
    await store.reject(event.request_id, rejection)


async def on_credentials_delivered(
    envelope: Envelope[CredentialsDelivered], store: RequestStore
) -> None:
    await store.mark_delivered(envelope.event.request_id, envelope.event.delivered_at)


async def on_credentials_failed(envelope: Envelope[CredentialsFailed], store: RequestStore) -> None:
    await store.mark_delivery_failed(envelope.event.request_id, envelope.event.error)


async def on_room_released(envelope: Envelope[RoomReleased], store: RequestStore) -> None:
    await store.note_release(envelope.event.request_id, envelope.event.meeting_id)


HANDLERS = (
    HandlerTable[RequestStore]("intake")
    .on(RoomAssigned, on_room_assigned)
    .on(RequestRejected, on_request_rejected)
    .on(CredentialsDelivered, on_credentials_delivered)
    .on(CredentialsFailed, on_credentials_failed)
    .on(RoomReleased, on_room_released)
    .on(RoomReassigned, on_room_reassigned)
)
"""The one event-to-handler table of the intake's projection."""
