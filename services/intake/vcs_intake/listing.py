"""Lists of requests: who may list which and the list item (the page cursor is vcs_shared.paging).

Shared by ``GET /v1/requests`` and the clerks' front page, so both show the same
requests to the same person.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from vcs_intake.domain import RequestState
from vcs_intake.schemas import RequestSummary
from vcs_intake.store import RequestFilter
from vcs_shared.auth import Principal
from vcs_shared.request_status import Status
from vcs_shared.store import epoch_ms
from vcs_shared.thaitime import BANGKOK


def visible_to(
    principal: Principal, *, statuses: tuple[Status, ...] = (), day: date | None = None
) -> RequestFilter:
    """The requests a caller may list: an office its district's, an operator its provinces'
    (all of them: no province filter at all)."""
    starts_from_ms = starts_before_ms = None
    if day is not None:
        start = datetime.combine(day, time(0), tzinfo=BANGKOK)
        starts_from_ms, starts_before_ms = epoch_ms(start), epoch_ms(start + timedelta(days=1))
    if principal.district_code is not None:
        district, provinces = principal.district_code, None
    else:
        district = None
        provinces = None if principal.national else principal.provinces
    return RequestFilter(
        district_code=district,
        province_codes=provinces,
        statuses=statuses,
        starts_from_ms=starts_from_ms,
        starts_before_ms=starts_before_ms,
    )


def summary(request: RequestState) -> RequestSummary:
    """A list item: never the passcode."""
    shown = request.visible_assignment
    return RequestSummary(
        request_id=request.request_id,
        status=request.status,
        district_code=request.district_code,
        province_code=request.province_code,
        title=request.title,
        starts_at=request.starts_at,
        ends_at=request.ends_at,
        participants=request.participants,
        urgency=request.urgency,
        needs_support=request.needs_support,
        submitted_at=request.submitted_at,
        meeting_id=shown.meeting_id if shown else None,
    )
