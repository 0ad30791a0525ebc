"""What the desk does with the request events for its support tickets.

* ``request.submitted`` with ``needs_support`` opens the request's ticket (its id is the
  request's, so a redelivery finds the ticket and announces nothing again);
* ``request.cancelled`` closes the request's open or claimed ticket (``request_cancelled``):
  nobody should travel for a meeting that will not happen.

Both are idempotent, like every handler.
"""

from __future__ import annotations

from vcs_desk.support import SupportDeps, close_for_cancelled_request, open_for_request
from vcs_shared.envelope import Envelope
from vcs_shared.events import RequestCancelled, RequestSubmitted


async def open_support_ticket(envelope: Envelope[RequestSubmitted], deps: SupportDeps) -> None:
    """request.submitted (needs_support) → the request's ticket, open → support.requested."""
    await open_for_request(deps, envelope.event, envelope.correlation_id)


async def close_support_ticket(envelope: Envelope[RequestCancelled], deps: SupportDeps) -> None:
    """request.cancelled → its open or claimed ticket closes → support.done."""
    await close_for_cancelled_request(deps, envelope.event, envelope.correlation_id)
