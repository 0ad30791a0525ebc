"""A request's status and the one machine it moves by, shared by whoever follows requests.

The intake keeps each request's status (its API, its projection and its store's conditional
writes read it from here); the desk's operators' read model follows the same events and must
reach the same status whatever order they come in. One machine in one place keeps the two
from disagreeing, and keeps the rule of what counts as *stuck* the same for the intake's
watch (``vcs requests stuck``) and the operators' list. No I/O here.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum


# The class name and the missing docstring are part of the HTTP contract: the OpenAPI
# document names this schema "Status".
class Status(StrEnum):
    submitted = "submitted"
    assigned = "assigned"
    delivered = "delivered"
    rejected = "rejected"
    cancelled = "cancelled"
    delivery_failed = "delivery_failed"

    def may_become(self, target: Status) -> bool:
        return target in MOVES[self]

    @property
    def refuses_cancel(self) -> bool:
        """A request that cannot move to cancelled and is not cancelled yet (cancelling twice is
        harmless): one that was rejected."""
        return self is not Status.cancelled and not self.may_become(Status.cancelled)

    @property
    def shows_room(self) -> bool:
        """Whether a room assigned to the request is shown (and still stored when its
        assignment arrives late): not once it was cancelled or rejected."""
        return self not in (Status.cancelled, Status.rejected)

    @property
    def settled(self) -> bool:
        """Nothing more happens to the request by itself (a clerk's live page stops listening):
        it was delivered, rejected, cancelled, or its delivery failed (only an operator moves it
        on from there)."""
        return self not in NOT_FINAL

    @property
    def allows_redelivery(self) -> bool:
        """An operator may send the credentials again: once a delivery was tried (delivered or
        failed), never before the room is known nor after the request ended."""
        return self in (Status.delivered, Status.delivery_failed)


MOVES: dict[Status, frozenset[Status]] = {
    # delivered may overtake assigned: the notifier's event can arrive before the allocator's
    Status.submitted: frozenset(
        {
            Status.assigned,
            Status.rejected,
            Status.delivered,
            Status.delivery_failed,
            Status.cancelled,
        }
    ),
    Status.assigned: frozenset({Status.delivered, Status.delivery_failed, Status.cancelled}),
    # a channel may fail for good after another delivered (an office's webhook, retried for
    # hours after the mail went out): operators then see it and can redeliver
    Status.delivered: frozenset({Status.cancelled, Status.delivery_failed}),
    # an operator's redelivery may still get the credentials through
    Status.delivery_failed: frozenset({Status.delivered, Status.cancelled}),
    Status.rejected: frozenset(),
    Status.cancelled: frozenset(),
}
"""Every allowed move of a request's status; the last two are final."""


NOT_FINAL: tuple[Status, ...] = (Status.submitted, Status.assigned)
"""Still on its way: a request that stays here too long is stuck (nothing final happened)."""

OPEN: tuple[Status, ...] = (
    Status.submitted,
    Status.assigned,
    Status.delivered,
    Status.delivery_failed,
)
"""The statuses of a booking an office still holds (or is about to): what its quota counts
(a failed delivery still holds its room)."""


def stuck_before(now: datetime, after: timedelta) -> datetime:
    """Requests submitted before this moment and still :data:`NOT_FINAL` are stuck
    (``VCS_STUCK_AFTER_MINUTES`` is ``after``)."""
    return now - after


def is_stuck(status: Status, submitted_at: datetime, now: datetime, after: timedelta) -> bool:
    """Whether one request is stuck: nothing final happened ``after`` its submission."""
    return status in NOT_FINAL and submitted_at < stuck_before(now, after)
