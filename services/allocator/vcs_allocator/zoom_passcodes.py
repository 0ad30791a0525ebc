"""A fresh Zoom passcode per booking: chosen at allocation, set on Zoom just before the window.

Why this timing: a room holds several bookings a day. Setting a booking's passcode when it is
allocated would change the passcode under an earlier booking of the same room that has not
happened yet. So the passcode is generated at allocation (the office receives it at once, in
``room.assigned``) and a durable job (collection ``zoom_passcodes``) sets it on the Meeting ID
at the start of the turnover buffer before the window (``VCS_BUFFER_MINUTES``; the earlier
booking has ended by then). Zoom offers no per-occurrence passcode a booking could own instead
(a recurring meeting's occurrences share the meeting's passcode), so the passcode must change
on the Meeting ID itself, in booking order.

Jobs are keyed ``<request id>:<meeting id>``, so a redelivered ``request.submitted`` finds its
passcode again and a duplicate that chose another room cannot overwrite the winner's. Any
allocator process applies due jobs: each is claimed with a lease (``claimed_ms``, as the
notifier's reminders), so it is PATCHed once even with several processes; a process that
died mid-way is replaced once the lease has passed. A job whose booking no longer holds that
room (cancelled, reassigned, or a duplicate that lost) is withdrawn without a PATCH.

Zoom's daily allowance (:mod:`vcs_allocator.zoom_budget`) is spent at allocation, for the UTC
day the PATCH will happen: rooms of hosts with allowance left are preferred, so bookings
spread over hosts. Fallbacks (``VCS_ZOOM_FALLBACK``), each logged as ``zoom.fallback`` and
counted in ``vcs_zoom_passcodes{outcome}``:

* no allowance left for the chosen room's host, or (``reject`` only) Zoom unreachable at
  allocation: ``pool_passcode`` keeps the room's standing passcode; ``reject`` rejects the
  request (``no_room_free``, saying why).
* Zoom still failing when the window starts: the booking was confirmed already, so in either
  mode the office is sent the passcode the Meeting ID really has (the last one set, else the
  pool's) as ``room.reassigned`` to the same room, which the notifier mails like any move,
  and the live feed shows (``reassigned_by`` = ``zoom-fallback``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

import structlog
from pymongo.asynchronous.database import AsyncDatabase

from vcs_allocator.domain import Decision, Rejection, Room, reject
from vcs_allocator.reassign import room_reassigned
from vcs_allocator.store import MongoReservationStore
from vcs_allocator.zoom import MeetingPasscodes, ZoomUnavailable, new_passcode
from vcs_allocator.zoom_budget import HostBudget
from vcs_shared.clock import Clock, utc_now
from vcs_shared.credentials import CredentialsSealer, MeetingCredentials
from vcs_shared.events import RejectionReason
from vcs_shared.metrics import ZOOM_PASSCODES
from vcs_shared.outbox import announce
from vcs_shared.store import Document, epoch_ms

log = structlog.get_logger(__name__)

Fallback = Literal["pool_passcode", "reject"]
NEVER_MS = 2**62
FALLBACK_BY = "zoom-fallback"


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


@dataclass(frozen=True, slots=True)
class PasscodeJob:
    """One booking's passcode, to be set on ``meeting_id`` at ``due_ms``."""

    request_id: str
    meeting_id: str
    sealed_credentials: str
    """What the office was sent in ``room.assigned`` (sealed)."""
    fresh: bool
    """True: set this passcode on Zoom. False: the host had no allowance left; the office got
    the room's standing passcode, which is checked again before the window."""
    due_ms: int
    starts_ms: int
    attempts: int = 0
    state: str = "pending"

    @property
    def id(self) -> str:
        return f"{self.request_id}:{self.meeting_id}"


class MongoPasscodeJobs:
    """``zoom_passcodes`` (the jobs, ``due_ms`` indexed: the due query is one range over it)
    and ``zoom_meetings`` (per Meeting ID, the passcode last set on Zoom)."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.jobs = db["zoom_passcodes"]
        self.meetings = db["zoom_meetings"]

    async def ensure_indexes(self) -> None:
        await self.jobs.create_index("due_ms")

    async def plan(self, job: PasscodeJob) -> tuple[PasscodeJob, bool]:
        """Stores ``job`` unless one exists for its booking and room; returns the stored one
        and whether it is new (the caller spends allowance only for a new one)."""
        fields = {
            "request_id": job.request_id,
            "meeting_id": job.meeting_id,
            "sealed_credentials": job.sealed_credentials,
            "fresh": job.fresh,
            "due_ms": job.due_ms,
            "starts_ms": job.starts_ms,
            "attempts": 0,
            "claimed_ms": 0,
            "state": "pending",
        }
        result = await self.jobs.update_one({"_id": job.id}, {"$setOnInsert": fields}, upsert=True)
        stored = await self.jobs.find_one({"_id": job.id})
        assert stored is not None  # just written
        return _job(stored), result.upserted_id is not None

    async def downgrade(self, job: PasscodeJob, sealed_credentials: str) -> None:
        """A new job whose host had no allowance after all: the standing passcode instead."""
        await self.jobs.update_one(
            {"_id": job.id, "state": "pending"},
            {"$set": {"fresh": False, "sealed_credentials": sealed_credentials}},
        )

    async def due(self, now: datetime, *, limit: int) -> list[PasscodeJob]:
        cursor = self.jobs.find({"due_ms": {"$lte": epoch_ms(now)}}).limit(limit)
        return [_job(doc) async for doc in cursor]

    async def claim(self, job: PasscodeJob, lease: timedelta, *, now: datetime) -> bool:
        """Takes a due job for this process; False if another holds it or it is done."""
        result = await self.jobs.update_one(
            {
                "_id": job.id,
                "due_ms": {"$lte": epoch_ms(now)},
                "claimed_ms": {"$lt": epoch_ms(now - lease)},
            },
            {"$set": {"claimed_ms": epoch_ms(now)}},
        )
        return result.modified_count == 1

    async def retry(self, job: PasscodeJob, due: datetime) -> None:
        await self.jobs.update_one(
            {"_id": job.id},
            {"$set": {"due_ms": epoch_ms(due), "claimed_ms": 0}, "$inc": {"attempts": 1}},
        )

    async def finish(self, job: PasscodeJob, state: str, *, at: datetime) -> None:
        await self.jobs.update_one(
            {"_id": job.id},
            {"$set": {"due_ms": NEVER_MS, "state": state, "done_ms": epoch_ms(at)}},
        )

    async def state(self, request_id: str, meeting_id: str) -> str | None:
        doc = await self.jobs.find_one({"_id": f"{request_id}:{meeting_id}"})
        return None if doc is None else str(doc["state"])

    async def standing(self, meeting_id: str) -> str | None:
        """The sealed credentials last set on Zoom for ``meeting_id``; None: the pool's."""
        doc = await self.meetings.find_one({"_id": meeting_id})
        return None if doc is None else str(doc["sealed_credentials"])

    async def set_standing(self, meeting_id: str, sealed_credentials: str, at: datetime) -> None:
        await self.meetings.update_one(
            {"_id": meeting_id},
            {"$set": {"sealed_credentials": sealed_credentials, "set_ms": epoch_ms(at)}},
            upsert=True,
        )


def _job(doc: Document) -> PasscodeJob:
    return PasscodeJob(
        request_id=doc["request_id"],
        meeting_id=doc["meeting_id"],
        sealed_credentials=doc["sealed_credentials"],
        fresh=doc["fresh"],
        due_ms=doc["due_ms"],
        starts_ms=doc["starts_ms"],
        attempts=doc.get("attempts", 0),
        state=doc.get("state", "pending"),
    )


@dataclass(frozen=True, slots=True)
class ZoomPasscodes:
    """Per-booking passcodes: planned by the allocation handler, applied by a background loop."""

    jobs: MongoPasscodeJobs
    budget: HostBudget
    zoom: MeetingPasscodes
    sealer: CredentialsSealer
    fallback: Fallback
    lead: timedelta
    """How long before the window the passcode is set (the turnover buffer)."""
    lease: timedelta = timedelta(minutes=5)
    retry_first: timedelta = timedelta(seconds=30)
    retry_most: timedelta = timedelta(minutes=5)
    clock: Clock = utc_now
    """The time a refusal is recorded at: the allocator's injected clock."""

    def apply_day(self, starts_at: datetime) -> date:
        """The UTC day the passcode is set on (Zoom's daily allowance resets at 00:00 UTC)."""
        return (starts_at - self.lead).astimezone(UTC).date()

    async def preferred(self, rooms: Sequence[Room], starts_at: datetime) -> list[Room]:
        """The rooms whose host still has allowance on the day of the change."""
        left = await self.budget.left({r.zoom_host for r in rooms}, self.apply_day(starts_at))
        return [room for room in rooms if left[room.zoom_host] > 0]

    async def credentials_for(
        self, request_id: str, starts_at: datetime, room: Room
    ) -> str | Rejection:
        """The sealed credentials the booking's ``room.assigned`` (or an operator's move,
        ``room.reassigned``) carries for ``room``: a fresh passcode (its job stored), the
        room's pool passcode (fallback), or a rejection (fallback)."""
        pool_credentials = self.sealer.open(room.sealed_credentials)
        passcode = new_passcode()
        fresh = MeetingCredentials(passcode=passcode, join_url=room.public_join_url)
        job = PasscodeJob(
            request_id=request_id,
            meeting_id=room.meeting_id,
            sealed_credentials=self.sealer.seal(fresh),
            fresh=True,
            due_ms=epoch_ms(starts_at - self.lead),
            starts_ms=epoch_ms(starts_at),
        )
        if self.fallback == "reject":
            try:
                await self.zoom.check()
            except ZoomUnavailable as error:
                return self._refuse(request_id, room, f"Zoom unreachable: {error}")
        stored, new = await self.jobs.plan(job)
        if not new:  # a redelivery: what the first attempt planned
            if stored.state == "rejected":
                return self._refuse(request_id, room, "planned as rejected by an earlier attempt")
            return self.sealer.reseal(stored.sealed_credentials)
        if await self.budget.take(room.zoom_host, self.apply_day(starts_at)):
            ZOOM_PASSCODES.labels("planned").inc()
            return stored.sealed_credentials
        if self.fallback == "reject":
            await self.jobs.finish(stored, "rejected", at=self.clock())
            return self._refuse(
                request_id, room, f"host {room.zoom_host} has no updates left today"
            )
        standing = self.sealer.seal(pool_credentials)
        await self.jobs.downgrade(stored, standing)
        log.warning(
            "zoom.fallback",
            request_id=request_id,
            meeting_id=room.meeting_id,
            reason="daily limit",
            host=room.zoom_host,
            fallback="pool_passcode",
        )
        ZOOM_PASSCODES.labels("fallback_pool_passcode").inc()
        return standing

    def _refuse(self, request_id: str, room: Room, why: str) -> Rejection:
        log.warning(
            "zoom.fallback",
            request_id=request_id,
            meeting_id=room.meeting_id,
            reason=why,
            fallback="reject",
        )
        ZOOM_PASSCODES.labels("fallback_reject").inc()
        return reject(
            RejectionReason.no_room_free,
            "ตั้งรหัสผ่านใหม่ของห้องประชุม Zoom ไม่ได้ในขณะนี้ โปรดลองจองใหม่ภายหลัง",
            "a fresh Zoom passcode cannot be set now; please try booking again later",
        )

    async def apply_due(
        self, store: MongoReservationStore, now: datetime, *, limit: int = 50
    ) -> int:
        """Sets the passcodes of the due jobs this process claims; returns how many it handled."""
        handled = 0
        for job in await self.jobs.due(now, limit=limit):
            if not await self.jobs.claim(job, self.lease, now=now):
                continue
            handled += 1
            await self._apply(store, job, now)
        return handled

    async def _apply(self, store: MongoReservationStore, job: PasscodeJob, now: datetime) -> None:
        decision = await store.decision(job.request_id)
        if decision is None or decision.held_meeting_id != job.meeting_id:
            await self.jobs.finish(job, "withdrawn", at=now)
            ZOOM_PASSCODES.labels("withdrawn").inc()
            return
        if not job.fresh:
            await self._deliver_standing(store, decision, job, now, None)
            return
        passcode = self.sealer.open(job.sealed_credentials).passcode
        try:
            await self.zoom.set_passcode(job.meeting_id, passcode)
        except ZoomUnavailable as error:
            if now < from_ms(job.starts_ms):
                wait = min(self.retry_first * 2**job.attempts, self.retry_most)
                await self.jobs.retry(job, min(now + wait, from_ms(job.starts_ms)))
                log.warning("zoom.retry", meeting_id=job.meeting_id, error=str(error))
                return
            await self._deliver_standing(store, decision, job, now, str(error))
            return
        await self.jobs.set_standing(job.meeting_id, job.sealed_credentials, now)
        await self.jobs.finish(job, "applied", at=now)
        ZOOM_PASSCODES.labels("applied").inc()
        log.info("zoom.passcode_set", request_id=job.request_id, meeting_id=job.meeting_id)

    async def _deliver_standing(
        self,
        store: MongoReservationStore,
        decision: Decision,
        job: PasscodeJob,
        now: datetime,
        zoom_error: str | None,
    ) -> None:
        """Sends the office the passcode the Meeting ID really has, unless it already has it;
        ``zoom_error``: why Zoom did not take the fresh one (None: none was to be set)."""
        reservation = decision.reservation
        assert reservation is not None  # it holds job.meeting_id
        rooms = await store.rooms([reservation.pool])
        room = next(r for r in rooms if r.meeting_id == job.meeting_id)
        standing = await self.jobs.standing(job.meeting_id) or room.sealed_credentials
        sent = self.sealer.open(job.sealed_credentials).passcode
        if self.sealer.open(standing).passcode != sent:
            moved = dataclasses.replace(decision, reassignments=decision.reassignments + 1)
            sealed = self.sealer.reseal(standing)
            event = room_reassigned(
                reservation, room, sealed, moved.reassignments, FALLBACK_BY, now
            )
            announcement = announce(event, correlation_id=reservation.request_id)
            if not await store.move(moved, room.meeting_id, announcement):
                await self.jobs.finish(job, "withdrawn", at=now)  # cancelled or moved meanwhile
                return
        if zoom_error is None:
            await self.jobs.finish(job, "kept", at=now)
            ZOOM_PASSCODES.labels("kept_standing").inc()
            return
        await self.jobs.finish(job, "fell_back", at=now)
        ZOOM_PASSCODES.labels("fallback_standing").inc()
        log.warning(
            "zoom.fallback",
            request_id=job.request_id,
            meeting_id=job.meeting_id,
            reason=zoom_error,
            fallback="standing_passcode",
        )
