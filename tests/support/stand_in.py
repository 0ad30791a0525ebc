"""A stand-in allocator for tests of the consumer itself: the allocator's handler table with the
test's own handler for ``request.submitted``, ``request.cancelled`` ignored."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from vcs_shared.dispatch import Handlers, HandlerTable
from vcs_shared.envelope import Envelope
from vcs_shared.events import RequestCancelled, RequestSubmitted

OnSubmitted = Callable[[Envelope[RequestSubmitted], None], Awaitable[None]]


def stand_in_allocator(on_submitted: OnSubmitted) -> Handlers:
    """Handlers the consumer accepts for the allocator's queues (it refuses a table that does
    not handle exactly the events bound to them)."""

    async def ignore(envelope: Envelope[RequestCancelled], _: None) -> None:
        return None

    table = HandlerTable[None]("allocator").on(RequestSubmitted, on_submitted)
    return table.on(RequestCancelled, ignore).bind(None)
