"""The desk's projection of requests: its one event-to-handler table (queue ``<ns>.desk``).

Each handler records the event in the request's history (once per CloudEvent id) and moves
the board's row along the shared status machine (:mod:`vcs_desk.request_board`), so a
redelivered or reordered event changes nothing it should not. Nothing secret is kept: no
contact (it travels sealed), no passcode (``sealed_credentials`` is never read).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from vcs_desk.request_board import RequestBoard, bangkok_day
from vcs_desk.support import SupportDeps, close_for_cancelled_request, open_for_request
from vcs_shared.dispatch import HandlerTable
from vcs_shared.envelope import Envelope
from vcs_shared.events import (
    CredentialsDelivered,
    CredentialsFailed,
    Event,
    RequestCancelled,
    RequestRejected,
    RequestSubmitted,
    RoomAssigned,
    RoomReassigned,
    RoomReleased,
)
from vcs_shared.request_status import Status
from vcs_shared.store import Document, epoch_ms

ORDER = {
    RequestSubmitted: 0,
    RoomAssigned: 1,
    RequestRejected: 1,
    RoomReassigned: 2,
    CredentialsDelivered: 3,
    CredentialsFailed: 3,
    RequestCancelled: 4,
    RoomReleased: 5,
}
"""Ties in the history (two events of one millisecond) in the order they can happen."""


@dataclass(frozen=True, slots=True)
class Projection:
    """What the handlers write to: the board, and the support tickets (a request that asked
    for staff opens its ticket; a cancelled one closes it)."""

    board: RequestBoard
    support: SupportDeps


def _subject(event: Event) -> Document:
    return {"province_code": event.province_code, "district_code": event.district_code}


async def _record(
    envelope: Envelope[Event],
    board: RequestBoard,
    at: datetime,
    *,
    actor: str | None = None,
    summary: str | None = None,
) -> int:
    """Adds the event to the request's history; its time in epoch ms."""
    event = envelope.event
    at_ms = epoch_ms(at)
    await board.record_event(
        {
            "_id": envelope.id,
            "request_id": event.request_id,
            "event": event.name,
            "at_ms": at_ms,
            "seq": ORDER.get(type(event), 9),
            "actor": actor,
            "summary": summary,
        }
    )
    return at_ms


def _when(envelope: Envelope[Event], fallback: datetime | None = None) -> datetime:
    """The event's own time of what happened when it has one, else its CloudEvent time."""
    moment = fallback or envelope.time
    if moment is None:
        raise ValueError(f"{envelope.event.name} {envelope.id} has no time")
    return moment


async def on_submitted(envelope: Envelope[RequestSubmitted], deps: Projection) -> None:
    board = deps.board
    event = envelope.event
    at_ms = await _record(envelope, board, event.submitted_at, summary=event.title)
    fields = {
        "title": event.title,
        "starts_ms": epoch_ms(event.starts_at),
        "ends_ms": epoch_ms(event.ends_at),
        "day": bangkok_day(event.starts_at),
        "participants": event.participants,
        "urgency": event.urgency.value,
        "needs_support": event.needs_support,
        "submitted_ms": at_ms,
    }
    await board.move(event.request_id, _subject(event), Status.submitted, at_ms)
    await board.note(event.request_id, _subject(event), fields, at_ms)
    await open_for_request(deps.support, event, envelope.correlation_id)


async def on_assigned(envelope: Envelope[RoomAssigned], deps: Projection) -> None:
    board = deps.board
    event = envelope.event
    at_ms = await _record(envelope, board, _when(envelope), summary=event.meeting_id)
    await board.move(event.request_id, _subject(event), Status.assigned, at_ms)
    await board.set_room(event.request_id, event.meeting_id, 0)


async def on_reassigned(envelope: Envelope[RoomReassigned], deps: Projection) -> None:
    board = deps.board
    event = envelope.event
    at_ms = await _record(
        envelope,
        board,
        event.reassigned_at,
        actor=event.reassigned_by,
        summary=f"{event.old_meeting_id} → {event.new_meeting_id}",
    )
    await board.note(event.request_id, _subject(event), {}, at_ms)
    await board.set_room(event.request_id, event.new_meeting_id, event.reassignment)


async def on_rejected(envelope: Envelope[RequestRejected], deps: Projection) -> None:
    board = deps.board
    event = envelope.event
    at_ms = await _record(envelope, board, _when(envelope), summary=event.reason.value)
    await board.move(event.request_id, _subject(event), Status.rejected, at_ms)


async def on_cancelled(envelope: Envelope[RequestCancelled], deps: Projection) -> None:
    board = deps.board
    event = envelope.event
    at_ms = await _record(envelope, board, event.cancelled_at, actor=event.cancelled_by)
    await board.move(event.request_id, _subject(event), Status.cancelled, at_ms)
    await close_for_cancelled_request(deps.support, event, envelope.correlation_id)


async def on_delivered(envelope: Envelope[CredentialsDelivered], deps: Projection) -> None:
    board = deps.board
    event = envelope.event
    at_ms = await _record(envelope, board, event.delivered_at, summary=event.channel)
    await board.move(event.request_id, _subject(event), Status.delivered, at_ms)


async def on_failed(envelope: Envelope[CredentialsFailed], deps: Projection) -> None:
    board = deps.board
    event = envelope.event
    summary = f"{event.channel}: {event.error}"
    at_ms = await _record(envelope, board, _when(envelope), summary=summary)
    await board.move(event.request_id, _subject(event), Status.delivery_failed, at_ms)


async def on_released(envelope: Envelope[RoomReleased], deps: Projection) -> None:
    """Only told in the history: the cancel or move that released the room set the status."""
    board = deps.board
    await _record(envelope, board, _when(envelope), summary=envelope.event.meeting_id)


HANDLERS = (
    HandlerTable[Projection]("desk")
    .on(RequestSubmitted, on_submitted)
    .on(RoomAssigned, on_assigned)
    .on(RoomReassigned, on_reassigned)
    .on(RequestRejected, on_rejected)
    .on(RequestCancelled, on_cancelled)
    .on(CredentialsDelivered, on_delivered)
    .on(CredentialsFailed, on_failed)
    .on(RoomReleased, on_released)
)
"""The one event-to-handler table of the desk's read model."""
