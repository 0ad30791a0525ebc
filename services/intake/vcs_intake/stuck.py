"""The safety net for what nobody foresaw: a request that is still not final (submitted or
assigned) ``VCS_STUCK_AFTER_MINUTES`` after it was submitted is logged as an error, once.

Every known failure ends in a final state by itself (a rejection, ``credentials.failed``);
this catches the ones nobody thought of, so an operator hears of them before the office
phones. ``vcs requests stuck`` lists them, with the dead letters carrying their ids, and
the ``vcs_requests_stuck`` gauge counts them for the alert.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import structlog

from vcs_intake.store import MongoRequestStore
from vcs_shared.clock import Clock
from vcs_shared.metrics import STUCK_REQUESTS
from vcs_shared.request_status import stuck_before
from vcs_shared.runtime import every

log = structlog.get_logger(__name__)


async def report_stuck(store: MongoRequestStore, after: timedelta, clock: Clock) -> int:
    """Logs each request not final ``after`` its submission that was not reported yet;
    how many."""
    now = clock()
    found = await store.stuck(stuck_before(now, after))
    for request in found:
        waited = int((now - request.submitted_at).total_seconds() // 60)
        log.error(
            "request.stuck",
            request_id=request.request_id,
            status=request.status.value,
            district_code=request.district_code,
            submitted_at=request.submitted_at.isoformat(),
            waited_minutes=waited,
            see="vcs requests stuck",
        )
        await store.mark_stuck_reported(request.request_id, now)
    STUCK_REQUESTS.set(await store.count_stuck(stuck_before(now, after)))
    return len(found)


async def watch_stuck(
    store: MongoRequestStore, after: timedelta, clock: Clock, stop: asyncio.Event
) -> None:
    """Looks every quarter of ``after`` (at most a minute) until ``stop``."""

    async def report() -> None:
        await report_stuck(store, after, clock)

    interval = min(60.0, after.total_seconds() / 4)
    await every(interval, report, stop, failed="stuck.check_failed")
