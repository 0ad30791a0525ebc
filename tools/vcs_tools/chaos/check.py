"""The soak's verdict, from what the public contracts showed: no I/O here.

The checker knows only what any outsider could see: each accepted request's
status over HTTP, every event published on ``<ns>.events`` (as CloudEvents),
the mails the SMTP server received and the dead letters the operators' API
lists. Keeping it pure lets the unit tests feed it a history with exactly one
fault in it and see that exactly that fault is counted.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

FINAL_STATUSES = frozenset({"delivered", "rejected", "cancelled", "delivery_failed"})


@dataclass(frozen=True, slots=True)
class SeenEvent:
    """One CloudEvent as it arrived on the events exchange (a copy may arrive twice)."""

    event_id: str
    name: str  # e.g. ``room.assigned``
    request_id: str
    data: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class SeenMail:
    """One mail the SMTP server accepted: whose request, and which kind (``assigned`` ...)."""

    request_id: str
    kind: str
    arrived: float = 0.0  # when the server kept it (seconds since the epoch)


@dataclass(frozen=True, slots=True)
class SeenDeadLetter:
    """One message left in a DLQ, as the operators' API lists it."""

    message_id: str | None
    reason: str | None
    poison: bool
    """It can never be handled (not JSON, not a CloudEvent, data off its schema)."""
    request_id: str | None = None
    """The request it is about (the CloudEvent's subject), if it names one."""


@dataclass(frozen=True, slots=True)
class Verdict:
    requests: int
    lost: int
    double_booked: int
    duplicate_mails: int
    resent: int
    """Second copies of a mail whose first copy went out just before the notifier was
    SIGKILLed: not counted in ``duplicate_mails`` (see :func:`_duplicate_mails`)."""
    republished: int
    dead_letters: int
    unexplained: int
    details: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not (
            self.lost
            or self.double_booked
            or self.duplicate_mails
            or self.republished
            or self.unexplained
        )

    def line(self, *, minutes: float, faults: int) -> str:
        return (
            f"CHAOS minutes={minutes:g} requests={self.requests} faults={faults} "
            f"lost={self.lost} double_booked={self.double_booked} "
            f"duplicate_mails={self.duplicate_mails} resent={self.resent} "
            f"republished={self.republished} "
            f"dead_letters={self.dead_letters} unexplained={self.unexplained}"
        )


def verdict(
    statuses: Mapping[str, str | None],
    events: Iterable[SeenEvent],
    mails: Iterable[SeenMail],
    dead_letters: Iterable[SeenDeadLetter],
    notifier_killed: Iterable[float] = (),
) -> Verdict:
    """``statuses``: every accepted request id and the status the API answered at the end
    (None when it could not be read); ``notifier_killed``: when a notifier was SIGKILLed."""
    events = list(events)
    mails = list(mails)
    details: list[str] = []
    lost = _lost(statuses, mails, details)
    double_booked = _double_booked(events, details)
    duplicate_mails, resent = _duplicate_mails(mails, list(notifier_killed), details)
    republished = _republished(events, details)
    letters = list(dead_letters)
    unexplained = _unexplained(letters, statuses, details)
    return Verdict(
        requests=len(statuses),
        lost=lost,
        double_booked=double_booked,
        duplicate_mails=duplicate_mails,
        resent=resent,
        republished=republished,
        dead_letters=len(letters),
        unexplained=unexplained,
        details=tuple(details),
    )


def _lost(statuses: Mapping[str, str | None], mails: Iterable[SeenMail], out: list[str]) -> int:
    """Accepted but never final, or delivered without its credentials mail."""
    mailed = {m.request_id for m in mails if m.kind == "assigned"}
    lost = 0
    for request_id, status in statuses.items():
        if status not in FINAL_STATUSES:
            out.append(f"lost: {request_id} is {status}")
            lost += 1
        elif status == "delivered" and request_id not in mailed:
            out.append(f"lost: {request_id} is delivered but no credentials mail arrived")
            lost += 1
    return lost


def _double_booked(events: list[SeenEvent], out: list[str]) -> int:
    """Live bookings (assigned, never released) that overlap on one Meeting ID, and requests
    holding two rooms at once."""
    released = {e.request_id for e in events if e.name == "room.released"}
    rooms_of: dict[str, set[str]] = defaultdict(set)
    live: dict[str, dict[str, tuple[datetime, datetime]]] = defaultdict(dict)
    for event in events:
        if event.name != "room.assigned" or event.request_id in released:
            continue
        meeting_id = str(event.data["meeting_id"])
        rooms_of[event.request_id].add(meeting_id)
        window = (_time(event.data["starts_at"]), _time(event.data["ends_at"]))
        live[meeting_id][event.request_id] = window
    count = 0
    for request_id, rooms in rooms_of.items():
        if len(rooms) > 1:
            out.append(f"double booked: {request_id} holds {sorted(rooms)}")
            count += 1
    for meeting_id, bookings in live.items():
        ordered = sorted(bookings.items(), key=lambda item: item[1])
        for (first, (_, first_end)), (second, (second_start, _)) in itertools.pairwise(ordered):
            if second_start < first_end:
                out.append(f"double booked: {meeting_id} for {first} and {second}")
                count += 1
    return count


RESENT_WITHIN = 60.0
"""How long after a mail went out a SIGKILLed notifier may not have recorded it yet: the record
waits out a store freeze (the soak's last up to 15 s, under load it takes longer)."""


def _duplicate_mails(
    mails: Iterable[SeenMail], notifier_killed: list[float], out: list[str]
) -> tuple[int, int]:
    """More than one mail of a kind for a request (credentials, cancellation, rejection), and
    of those, how many were resent after a notifier was killed mid-send.

    A notifier SIGKILLed after the SMTP server kept a mail and before the notifier recorded
    it (the server's reply in flight, or the record waiting out a frozen store) leaves the
    outcome unknown to whoever takes the message over, which can only send it again, under
    the same Message-ID (RFC 1047's duplicate, which no SMTP client avoids): a copy that
    follows such a kill of its predecessor within :data:`RESENT_WITHIN` is counted as
    ``resent``. Any other second copy is a duplicate.

    A missing cancellation notice is not counted: after the SMTP server stayed away
    through every retry the notifier records it as failed, which no public contract
    shows (a missing credentials mail is, as ``lost``)."""
    copies: dict[tuple[str, str], list[float]] = defaultdict(list)
    for mail in mails:
        copies[(mail.request_id, mail.kind)].append(mail.arrived)
    duplicates = resent = 0
    for (request_id, kind), arrivals in sorted(copies.items()):
        arrivals.sort()
        unexplained = 0
        for before, after in itertools.pairwise(arrivals):
            if any(
                before - 1 <= kill <= min(after, before + RESENT_WITHIN) for kill in notifier_killed
            ):
                resent += 1
            else:
                unexplained += 1
        if unexplained:
            out.append(f"duplicate mail: {len(arrivals)} {kind} mails for {request_id}")
            duplicates += 1
    return duplicates, resent


def _republished(events: list[SeenEvent], out: list[str]) -> int:
    """The same event of a request published again under a new id (a copy with the same id is
    an at-least-once redelivery, which consumers deduplicate)."""
    ids: dict[tuple[str, str], set[str]] = defaultdict(set)
    for event in events:
        ids[(event.request_id, event.name)].add(event.event_id)
    count = 0
    for (request_id, name), distinct in sorted(ids.items()):
        if len(distinct) > 1:
            out.append(f"republished: {name} of {request_id} under {len(distinct)} ids")
            count += 1
    return count


def _unexplained(
    letters: list[SeenDeadLetter], statuses: Mapping[str, str | None], out: list[str]
) -> int:
    """A dead letter is explained only when it is poison, says why, and the request it names
    (if it names one) is one of the soak's and reached its final state anyway.

    A good message in a DLQ is never explained, whatever its request's status: a consumer gave
    up on work it should have done (a mail, a row of the desk's read model), and faults alone
    must not make it give up, since outages do not spend the delivery limit."""
    count = 0
    for letter in letters:
        if not letter.poison:
            why = f"a good message of {letter.request_id} ({letter.reason or 'no reason'})"
        elif not letter.reason:
            why = "poison without a reason"
        elif letter.request_id is not None and statuses.get(letter.request_id) not in (
            FINAL_STATUSES
        ):
            why = f"poison that left {letter.request_id} unfinished"
        else:
            continue
        out.append(f"unexplained dead letter {letter.message_id}: {why}")
        count += 1
    return count


def _time(value: object) -> datetime:
    return datetime.fromisoformat(str(value))
