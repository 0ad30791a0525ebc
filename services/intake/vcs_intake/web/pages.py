"""The clerks' pages: their office's requests, the new-request form, a request's own page
(live status, credentials, QR code, calendar file, printable confirmation, cancel).

Every page asks the same questions as the API, through the same code: who may see
a request (:func:`~vcs_intake.auth_deps.find_visible`: another office's request is
404 like a missing one), how a request is accepted (:func:`~vcs_intake.requests.accept`,
always with an Idempotency-Key), how it is shown (:func:`~vcs_intake.requests.view`)
and cancelled (:func:`~vcs_intake.requests.cancel`).
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import segno
from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup
from sse_starlette import EventSourceResponse

from vcs_intake import listing, requests
from vcs_intake.auth_deps import find_visible
from vcs_intake.container import Container, ContainerDep
from vcs_intake.domain import RequestState
from vcs_intake.gateway import GatewayDep
from vcs_intake.people.accounts import SignedIn
from vcs_intake.web.account_pages import PagesDep, sign_in_page
from vcs_intake.web.calendar import meeting_calendar
from vcs_intake.web.console_data import Fetched, OwnerApis
from vcs_intake.web.forms import RequestForm
from vcs_intake.web.i18n import N_
from vcs_intake.web.live import StatusHub
from vcs_intake.web.rendering import NO_STORE, Pages
from vcs_intake.web.session import MaybeSignedIn, Person
from vcs_shared.offices import find_office
from vcs_shared.request_status import Status
from vcs_shared.store import epoch_ms

router = APIRouter(include_in_schema=False)


# How often a live page re-reads its request without being woken (another intake process
# may have handled the event).
RECHECK_SECONDS = 3.0
LONGEST_MEETING = timedelta(hours=24)
REJECTION_ADVICE = {
    "no_room_free": N_(
        "Every room of your province is taken at that time. Try another time "
        "or day, or fewer participants."
    ),
    "capacity_exceeded": N_(
        "No room holds that many people. Lower the number of participants "
        "(the largest rooms hold 1,000)."
    ),
    "window_invalid": N_("Check the date and the start and end times."),
    "unknown_office": N_("Your office is not known to the system. Call the communication centre."),
    "pool_empty": N_("Your province has no rooms yet. Call the communication centre."),
}


def hub_of(request: Request) -> StatusHub:
    hub: StatusHub = request.app.state.status_hub
    return hub


HubDep = Annotated[StatusHub, Depends(hub_of)]


class PageNotFound(Exception):
    """No such request, or not one this person may see: the same page for both."""


async def visible_to_person(request_id: str, who: Person, container: ContainerDep) -> RequestState:
    record = await find_visible(container.store, request_id, who.principal)
    if record is None:
        raise PageNotFound(request_id)
    return record


Visible = Annotated[RequestState, Depends(visible_to_person)]


def not_found_page(request: Request, exc: Exception) -> Response:
    pages: Pages = request.app.state.pages
    return pages.render(request, "not_found.html", status_code=404)


@router.get("/")
async def home(
    request: Request, who: MaybeSignedIn, pages: PagesDep, container: ContainerDep
) -> Response:
    """Signed in: the requests of the person's office, upcoming first; otherwise sign-in."""
    if who is None:
        return sign_in_page(request, pages)
    now = datetime.now(UTC)
    which = listing.visible_to(who.principal)
    recent = await container.store.by_start(
        replace(which, starts_from_ms=epoch_ms(now - LONGEST_MEETING)),
        earliest_first=True,
        limit=100,
    )
    upcoming = [r for r in recent if r.ends_at > now]
    earlier = await container.store.by_start(
        replace(which, starts_before_ms=epoch_ms(now)), earliest_first=False, limit=30
    )
    shown = {r.request_id for r in upcoming}
    past = [r for r in earlier if r.request_id not in shown][:20]
    return pages.render(request, "home.html", who=who, upcoming=upcoming, past=past)


@router.get("/requests/new")
async def new_request(
    request: Request, who: Person, pages: PagesDep, container: ContainerDep
) -> Response:
    if who.person.district_code is None:
        return pages.render(request, "office_only.html", who=who, status_code=403)
    form = RequestForm.blank(who.person)
    again = request.query_params.get("again")
    previous = await find_visible(container.store, again, who.principal) if again else None
    if previous is not None:
        form = RequestForm.again(previous, who.person)
    return _form_page(request, pages, who, form, key=uuid.uuid4().hex)


@router.post("/requests/new")
async def submit_request(
    request: Request, who: Person, pages: PagesDep, container: ContainerDep
) -> Response:
    """The form goes through the API's own submit (:func:`requests.accept`) with an
    Idempotency-Key: a double click, a reload or a repost is one request."""
    if who.person.district_code is None:
        return pages.render(request, "office_only.html", who=who, status_code=403)
    posted = await request.form()
    data = {name: str(value) for name, value in posted.items()}
    form = RequestForm.posted(data)
    key = data.get("idempotency_key", "").strip()[:100] or _key_of(form)
    payload = form.to_request(who.person.district_code, now=datetime.now(UTC))
    if payload is None:
        return _form_page(request, pages, who, form, key=key, status_code=422)
    _ = pages.gettext(request)
    rules = container.rules
    try:
        accepted, _created = await requests.accept(
            who.principal,
            payload,
            f"form:{key}",
            container.store,
            container.clock,
            rules,
            container.sealer,
        )
    except requests.InvalidRequest as exc:
        for problem in exc.problems:
            if problem.kind == "window_beyond_horizon":
                form.errors["date"] = _("A meeting can be booked at most %(days)d days ahead.") % {
                    "days": rules.horizon.days
                }
            elif problem.field == "ends_at":
                hours = int(rules.max_duration.total_seconds() // 3600)
                form.errors["end_time"] = _("A meeting may last at most %(hours)d hours.") % {
                    "hours": hours
                }
            else:
                form.errors["date"] = _("The meeting must start later than now.")
        return _form_page(request, pages, who, form, key=key, status_code=422)
    except requests.QuotaExceeded as exc:
        form.errors["form"] = _(
            "Your office already has %(limit)d upcoming bookings, the most it may hold at "
            "once. Cancel one it no longer needs, or ask the regional operators."
        ) % {"limit": exc.limit}
        return _form_page(request, pages, who, form, key=key, status_code=429)
    except requests.IdempotencyConflict:
        form.errors["form"] = _(
            "This form was already sent with other details. Open a new form to ask again."
        )
        return _form_page(request, pages, who, form, key=key, status_code=409)
    return RedirectResponse(f"/requests/{accepted.request_id}", status_code=303)


@router.get("/requests/{request_id}")
async def request_page(
    record: Visible,
    request: Request,
    who: Person,
    pages: PagesDep,
    container: ContainerDep,
    gateway: GatewayDep,
) -> Response:
    support = None
    if record.needs_support:
        owners = OwnerApis(gateway, who.principal, pages.gettext(request))
        support = await support_ticket(record, owners)
    return pages.render(
        request, "request.html", who=who, support=support, **_details(record, container)
    )


async def support_ticket(record: RequestState, owners: OwnerApis) -> Fetched:
    """The request's support ticket, which the desk owns (its id is the request's); a 404
    means the desk has not opened it yet (the event is on its way)."""
    return await owners.get("desk", f"/v1/support-requests/{record.request_id}")


@router.get("/requests/{request_id}/live")
async def request_live(
    record: Visible,
    request: Request,
    who: Person,
    pages: PagesDep,
    container: ContainerDep,
    hub: HubDep,
) -> Response:
    """Server-sent events: ``status`` (the status section, rendered) whenever it changes,
    then ``end`` once the request has settled."""

    request_id = record.request_id

    async def events() -> AsyncIterator[dict[str, str]]:
        async with hub.watch(request_id) as watch:
            shown: tuple[str, bool] | None = None
            while True:
                current = await container.store.get(request_id)
                if current is None:
                    return
                state = (current.status, current.assignment is not None)
                if state != shown:
                    shown = state
                    html = pages.fragment(
                        request, "_status.html", who=who, **_details(current, container)
                    )
                    yield {"event": "status", "data": html}
                if current.status.settled:
                    yield {"event": "end", "data": current.status.value}
                    return
                await watch.next_change(within=RECHECK_SECONDS)

    return EventSourceResponse(events(), ping=15, headers=NO_STORE)


@router.get("/requests/{request_id}/calendar.ics")
async def request_calendar(record: Visible, container: ContainerDep) -> Response:
    details = _details(record, container)
    body = meeting_calendar(details["view"], office_name=details["office_name"])
    return Response(
        body,
        media_type="text/calendar; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="dopa-vcs-{record.request_id[:8]}.ics"',
            **NO_STORE,
        },
    )


@router.get("/requests/{request_id}/print")
async def request_print(
    record: Visible, request: Request, who: Person, pages: PagesDep, container: ContainerDep
) -> Response:
    details = _details(record, container)
    return pages.render(request, "print.html", who=who, printed_at=datetime.now(UTC), **details)


@router.get("/requests/{request_id}/cancel")
async def cancel_confirmation(
    record: Visible, request: Request, who: Person, pages: PagesDep, container: ContainerDep
) -> Response:
    return pages.render(request, "cancel.html", who=who, **_details(record, container))


@router.post("/requests/{request_id}/cancel")
async def cancel(record: Visible, who: Person, container: ContainerDep, hub: HubDep) -> Response:
    if _may_cancel(record):
        with contextlib.suppress(requests.NotCancellable):  # it ended meanwhile: the page says so
            await requests.cancel(record, who.principal, container.store, container.clock)
        hub.changed(record.request_id)
    return RedirectResponse(f"/requests/{record.request_id}", status_code=303)


def _form_page(
    request: Request,
    pages: Pages,
    who: SignedIn,
    form: RequestForm,
    *,
    key: str,
    status_code: int = 200,
) -> Response:
    return pages.render(
        request, "request_new.html", who=who, form=form, key=key, status_code=status_code
    )


def _key_of(form: RequestForm) -> str:
    """For a post without the form's own key (a script): the same fields, the same request."""
    fields = "\x1f".join(f"{k}={v}" for k, v in sorted(form.values.items()))
    return "fields-" + hashlib.sha256(fields.encode()).hexdigest()[:40]


def _may_cancel(record: RequestState) -> bool:
    return record.status.may_become(Status.cancelled) and record.ends_at > datetime.now(UTC)


def _details(record: RequestState, container: Container) -> dict[str, Any]:
    """What the request's page, its live section, its print and its calendar file show."""
    view = requests.view(record, container.sealer)
    office = find_office(record.district_code)
    qr = None
    if view.assignment is not None:
        code = segno.make(view.assignment.join_url, error="m")
        qr = Markup(code.svg_inline(scale=4, border=2, title="QR: join URL"))
    return {
        "view": view,
        "office": office,
        "office_name": office.name_en if office else record.district_code,
        "qr": qr,
        "may_cancel": _may_cancel(record),
        "advice": REJECTION_ADVICE.get(view.rejection.reason.value) if view.rejection else None,
        "settled": view.status.settled,
    }
