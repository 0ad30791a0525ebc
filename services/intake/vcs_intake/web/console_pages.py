"""The operators' console (``/console``): the live feed, a province's day, requests, the
support queue, stuck requests and dead letters, utilisation, the audit log, and invitations.

Signed-in operators only (an office's person gets a short page saying so). The
requests are the intake's own (a request's details, cancel); everything else comes
from its owner's internal API for the signed-in person (:mod:`console_data`), so
the owner applies that person's provinces. Forms post back here (CSRF-protected
like every form) and redirect to the page they came from with a notice.
"""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from vcs_intake import requests
from vcs_intake.auth_deps import find_visible
from vcs_intake.container import Container, ContainerDep
from vcs_intake.gateway import GatewayDep
from vcs_intake.people.accounts import SignedIn
from vcs_intake.people.model import Person as NewPerson
from vcs_intake.people.model import invite_refusal
from vcs_intake.people.store import EmailTaken
from vcs_intake.web.account_pages import PagesDep
from vcs_intake.web.charts import utilisation_chart
from vcs_intake.web.console_data import Fetched, OwnerApis
from vcs_intake.web.dates import DateInputError, bangkok, be_short, parse_date, parse_time
from vcs_intake.web.dayview import lay_out
from vcs_intake.web.i18n import N_, locale_of
from vcs_intake.web.rendering import NO_STORE, Pages, office_en, office_th
from vcs_intake.web.session import AccountsDep, Person, local_path
from vcs_shared.offices import all_offices
from vcs_shared.request_status import Status
from vcs_shared.thaitime import BANGKOK

router = APIRouter(prefix="/console", include_in_schema=False)

EVENT_LABELS = {
    "request.submitted": N_("New request"),
    "room.assigned": N_("Room assigned"),
    "room.reassigned": N_("Room reassigned"),
    "request.rejected": N_("Rejected"),
    "credentials.delivered": N_("Delivered"),
    "credentials.failed": N_("Delivery failed"),
    "request.cancelled": N_("Cancelled"),
    "room.released": N_("Room released"),
    "reminder.sent": N_("Reminder sent"),
    "support.requested": N_("Support asked for"),
    "support.claimed": N_("Support claimed"),
    "support.done": N_("Support done"),
}
# The channels of credentials.delivered and credentials.failed, as the feed names them.
CHANNEL_LABELS = {
    "email": N_("E-mail"),
    "line": N_("LINE"),
    "webhook": N_("Webhook"),
}
NOTICES = {
    "cancelled": N_("The request is cancelled; its room is free again."),
    "reassigned": N_("The booking moved to the new room; the office gets the new details."),
    "redelivered": N_("The credentials were sent again."),
    "claimed": N_("You claimed this support request."),
    "done": N_("The support request is marked done."),
    "replayed": N_("Replayed."),
}
AUDIT_ACTIONS = {
    "sign_in": N_("Sign-in"),
    "user_invite": N_("Invitation"),
    "pool_reload": N_("Pool reload"),
    "request_cancel": N_("Request cancelled"),
    "room_reassign": N_("Room reassigned"),
    "credentials_redeliver": N_("Credentials sent again"),
    "support_claim": N_("Support claimed"),
    "support_done": N_("Support done"),
    "token_issue": N_("Token issued"),
    "token_revoke": N_("Token revoked"),
    "dead_letter_replay": N_("Dead letters replayed"),
    "webhook_register": N_("Webhook registered"),
    "webhook_rotate": N_("Webhook secret rotated"),
    "webhook_remove": N_("Webhook removed"),
    "line_register": N_("LINE group set"),
    "line_remove": N_("LINE group removed"),
}
"""The audit log's actions (:class:`vcs_shared.audit.AuditAction`), as the page names them."""
HISTORY_LABELS = {**EVENT_LABELS, **AUDIT_ACTIONS}
"""A request's history mixes its events and the audit log's entries about it."""
ROLE_LABELS = {"office": N_("the office"), "operator": N_("an operator")}
"""Who an event says acted when it names a role, not a person (``cancelled_by``)."""
AUDIT_OUTCOMES = {"success": N_("Done"), "failure": N_("Failed")}
ACTOR_KINDS = {
    "person": N_("signed in"),
    "operator": N_("operator's token"),
    "office": N_("office's token"),
    "cli": N_("command on the server"),
}
AUDIT_FILTERS = ("actor", "action", "from", "to")
SUPPORT_STATUSES = ("open", "claimed", "done")
REQUEST_FILTERS = ("province", "district", "status", "date", "urgency", "needs_support", "stuck")


class OperatorsOnly(Exception):
    """A signed-in person who is not an operator opened the console."""


async def signed_in_operator(who: Person) -> SignedIn:
    if not who.principal.is_operator:
        raise OperatorsOnly
    return who


Operator = Annotated[SignedIn, Depends(signed_in_operator)]


def operators_only_page(request: Request, exc: Exception) -> Response:
    pages: Pages = request.app.state.pages
    return pages.render(request, "console/operators_only.html", status_code=403)


def owner_apis(request: Request, who: Operator, gateway: GatewayDep, pages: PagesDep) -> OwnerApis:
    return OwnerApis(gateway, who.principal, pages.gettext(request))


Owners = Annotated[OwnerApis, Depends(owner_apis)]


def provinces_of(who: SignedIn) -> list[tuple[str, str]]:
    """The operator's provinces as (code, Thai name), by code."""
    names = {o.province_code: o.province_name_th for o in all_offices()}
    return sorted((code, names.get(code, code)) for code in who.principal.provinces)


def _page(request: Request, pages: Pages, who: SignedIn, template: str, **context: Any) -> Response:
    notice = NOTICES.get(request.query_params.get("done", ""))
    return pages.render(
        request,
        template,
        who=who,
        provinces=provinces_of(who),
        notice=pages.gettext(request)(notice) if notice else None,
        section=template.removeprefix("console/").removesuffix(".html"),
        **context,
    )


def _back(path: str, done: str | None = None) -> Response:
    """After a form that worked: back to the page, which shows the notice ``done`` names."""
    target = local_path(path, "/console")
    separator = "&" if "?" in target else "?"
    return RedirectResponse(f"{target}{separator}done={done}" if done else target, status_code=303)


# The live feed


@router.get("")
async def feed_page(request: Request, who: Operator, pages: PagesDep) -> Response:
    """The live feed: the page's script follows ``/v1/admin/feed`` (EventSource, the session
    cookie), from the start of today, each row naming the office in Thai and the title."""
    _ = pages.gettext(request)
    offices = {
        o.district_code: office_th(o.district_code)
        if locale_of(request) == "th"
        else office_en(o.district_code)
        for o in all_offices()
        if o.province_code in who.principal.provinces
    }
    today = datetime.combine(datetime.now(BANGKOK).date(), time(0), tzinfo=BANGKOK)
    setup = {
        "since": today.isoformat(),
        "offices": offices,
        "labels": {name: _(label) for name, label in EVENT_LABELS.items()},
        "channels": {channel: _(label) for channel, label in CHANNEL_LABELS.items()},
        "locale": locale_of(request),
        "words": {"room": _("Room")},
    }
    # In a <script type="application/json"> block, "</" could end the block early.
    data = json.dumps(setup, ensure_ascii=False).replace("</", "<\\/")
    return _page(request, pages, who, "console/feed.html", setup=data)


@router.get("/requests/{request_id}/brief")
async def request_brief(request_id: str, who: Operator, container: ContainerDep) -> Response:
    """What a feed row needs of a request it saw no ``request.submitted`` for."""
    record = await find_visible(container.store, request_id, who.principal)
    if record is None:
        return JSONResponse({"detail": "no such request"}, status_code=404, headers=NO_STORE)
    return JSONResponse(
        {
            "request_id": record.request_id,
            "title": record.title,
            "district_code": record.district_code,
            "status": record.status.value,
        },
        headers=NO_STORE,
    )


# A province's day


@router.get("/day")
async def day_page(
    request: Request, who: Operator, pages: PagesDep, owners: Owners, container: ContainerDep
) -> Response:
    provinces = provinces_of(who)
    province = request.query_params.get("province") or (provinces[0][0] if provinces else "")
    day, date_error = _day_of(request.query_params.get("date"))
    rooms = await owners.get("allocator", "/v1/admin/pools", {"province": province})
    booked = await owners.get(
        "allocator", "/v1/admin/reservations", {"province": province, "date": day.isoformat()}
    )
    reservations = booked.items()
    titles = {}
    for record in await container.store.get_many([r["request_id"] for r in reservations]):
        titles[record.request_id] = record.title
    view = lay_out(day, rooms.items(), reservations, titles)
    return _page(
        request,
        pages,
        who,
        "console/day.html",
        view=view,
        province=province,
        problems=[f.problem for f in (rooms, booked) if f.problem],
        date_error=date_error,
        previous_day=day - timedelta(days=1),
        next_day=day + timedelta(days=1),
    )


def _day_of(text: str | None) -> tuple[date, str | None]:
    today = datetime.now(BANGKOK).date()
    if not text:
        return today, None
    try:
        return parse_date(text), None
    except DateInputError as exc:
        return today, str(exc)


# Requests


@router.get("/requests")
async def requests_page(
    request: Request, who: Operator, pages: PagesDep, owners: Owners
) -> Response:
    filters = {k: v for k in REQUEST_FILTERS if (v := request.query_params.get(k, "").strip())}
    if "date" in filters:
        with contextlib.suppress(DateInputError):  # the desk names the field in its answer
            filters["date"] = parse_date(filters["date"]).isoformat()
    if cursor := request.query_params.get("cursor"):
        filters["cursor"] = cursor
    found = await owners.get("desk", "/v1/admin/requests", filters)
    template = "console/stuck.html" if filters.get("stuck") else "console/requests.html"
    return _page(request, pages, who, template, found=found, filters=filters)


@router.get("/stuck")
async def stuck_page(request: Request, who: Operator, pages: PagesDep, owners: Owners) -> Response:
    found = await owners.get("desk", "/v1/admin/requests", {"stuck": "true"})
    letters = await owners.get("desk", "/v1/admin/dead-letters")
    return _page(
        request, pages, who, "console/stuck.html", found=found, letters=letters, filters={}
    )


@router.get("/requests/{request_id}")
async def request_page(
    request_id: str,
    request: Request,
    who: Operator,
    pages: PagesDep,
    owners: Owners,
    container: ContainerDep,
) -> Response:
    return await _request_view(request, who, pages, owners, container, request_id)


async def _request_view(
    request: Request,
    who: SignedIn,
    pages: Pages,
    owners: OwnerApis,
    container: Container,
    request_id: str,
    problem: str | None = None,
    status_code: int = 200,
) -> Response:
    record = await find_visible(container.store, request_id, who.principal)
    if record is None:
        return pages.render(request, "not_found.html", who=who, status_code=404)
    view = requests.view(record, container.sealer)
    history = await owners.get("desk", f"/v1/admin/requests/{request_id}/history")
    free_rooms: Fetched | None = None
    live = record.ends_at > datetime.now(UTC)
    if record.status.shows_room and live:
        free_rooms = await owners.get("allocator", f"/v1/admin/requests/{request_id}/free-rooms")
    response = _page(
        request,
        pages,
        who,
        "console/request.html",
        view=view,
        history=history,
        happenings=HISTORY_LABELS,
        roles=ROLE_LABELS,
        free_rooms=free_rooms,
        may_cancel=record.status.may_become(Status.cancelled) and live,
        may_redeliver=record.status.allows_redelivery,
        problem=problem,
    )
    response.status_code = status_code
    return response


@router.post("/requests/{request_id}/cancel")
async def cancel_request(
    request_id: str, who: Operator, container: ContainerDep, request: Request
) -> Response:
    record = await find_visible(container.store, request_id, who.principal)
    if record is None:
        return _back("/console/requests")
    if record.status.may_become(Status.cancelled):
        with contextlib.suppress(requests.NotCancellable):  # it ended meanwhile: the page says so
            await requests.cancel(record, who.principal, container.store, container.clock)
        request.app.state.status_hub.changed(request_id)
    return _back(f"/console/requests/{request_id}", "cancelled")


@router.post("/requests/{request_id}/reassign")
async def reassign_request(
    request_id: str,
    request: Request,
    who: Operator,
    pages: PagesDep,
    owners: Owners,
    container: ContainerDep,
) -> Response:
    form = await request.form()
    meeting_id = str(form.get("meeting_id", ""))
    done = await owners.post(
        "allocator", f"/v1/admin/requests/{request_id}/reassign", {"meeting_id": meeting_id}
    )
    if done.ok:
        return _back(f"/console/requests/{request_id}", "reassigned")
    return await _request_view(
        request, who, pages, owners, container, request_id, done.problem, done.status_code
    )


@router.post("/requests/{request_id}/redeliver")
async def redeliver_request(
    request_id: str,
    request: Request,
    who: Operator,
    pages: PagesDep,
    owners: Owners,
    container: ContainerDep,
) -> Response:
    done = await owners.post("notifier", f"/v1/admin/requests/{request_id}/redeliver", {})
    if done.ok and done.body.get("state") == "delivered":
        return _back(f"/console/requests/{request_id}", "redelivered")
    problem, status_code = done.problem, done.status_code
    if done.ok:  # the notifier tried and the channel refused: say why, on the page
        _ = pages.gettext(request)
        problem = _("Sending the credentials again failed: %(error)s") % {
            "error": done.body.get("error")
        }
        status_code = 502
    return await _request_view(
        request, who, pages, owners, container, request_id, problem, status_code
    )


# Support


@router.get("/support")
async def support_page(
    request: Request, who: Operator, pages: PagesDep, owners: Owners
) -> Response:
    return await _support_view(request, who, pages, owners, request.query_params.get("status"))


SUPPORT_STATE_LABELS = {
    "open": N_("Waiting for staff"),
    "claimed": N_("Staff on the way"),
    "done": N_("Done"),
}
VISIT_LEAD = timedelta(minutes=30)
"""A helper is best there half an hour before the meeting starts (the claim form's default)."""


async def _support_view(
    request: Request,
    who: SignedIn,
    pages: Pages,
    owners: OwnerApis,
    wanted: str | None,
    problem: str | None = None,
    status_code: int = 200,
) -> Response:
    _ = pages.gettext(request)
    wanted = wanted if wanted in SUPPORT_STATUSES else "open"
    found = await owners.get("desk", "/v1/admin/support", {"status": wanted})
    response = _page(
        request,
        pages,
        who,
        "console/support.html",
        found=found,
        wanted=wanted,
        statuses=SUPPORT_STATUSES,
        state_labels={state: _(label) for state, label in SUPPORT_STATE_LABELS.items()},
        claim_defaults={
            str(t.get("ticket_id")): claim_defaults(t, who.person.name) for t in found.items()
        },
        problem=problem,
    )
    response.status_code = status_code
    return response


def claim_defaults(ticket: dict[str, Any], helper: str) -> dict[str, str]:
    """The claim form's values: the operator helps, half an hour before the meeting (or at
    the next full hour for a ticket without one)."""
    visit = datetime.now(BANGKOK).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    with contextlib.suppress(TypeError, ValueError):
        if starts_at := ticket.get("starts_at"):
            visit = datetime.fromisoformat(starts_at).astimezone(BANGKOK) - VISIT_LEAD
    return {"helper": helper, "date": be_short(visit.date()), "time": visit.strftime("%H:%M")}


def visit_of(form: dict[str, str]) -> datetime:
    """The claim form's day and time as a moment in Thailand (DateInputError says why not)."""
    return bangkok(parse_date(form.get("visit_date", "")), parse_time(form.get("visit_time", "")))


@router.post("/support/{ticket_id}/claim")
async def claim_support(
    ticket_id: str, request: Request, who: Operator, pages: PagesDep, owners: Owners
) -> Response:
    """Who of the centre will help the office, and when (the desk's claim)."""
    _ = pages.gettext(request)
    form = {k: str(v).strip() for k, v in (await request.form()).items() if k != "csrftoken"}
    try:
        visit_at = visit_of(form)
    except DateInputError as exc:
        problem = _("When will they help? %(why)s") % {"why": exc}
        return await _support_view(request, who, pages, owners, "open", problem, 422)
    body = {"helper": form.get("helper", ""), "visit_at": visit_at.isoformat()}
    done = await owners.post("desk", f"/v1/admin/support/{ticket_id}/claim", body)
    if done.ok:
        return _back("/console/support?status=claimed", "claimed")
    return await _support_view(request, who, pages, owners, "open", done.problem, done.status_code)


@router.post("/support/{ticket_id}/done")
async def finish_support(
    ticket_id: str, request: Request, who: Operator, pages: PagesDep, owners: Owners
) -> Response:
    """The claimed ticket is done, with a note of what was done (the desk's done)."""
    form = await request.form()
    done = await owners.post(
        "desk", f"/v1/admin/support/{ticket_id}/done", {"note": str(form.get("note", ""))}
    )
    if done.ok:
        return _back("/console/support?status=done", "done")
    return await _support_view(
        request, who, pages, owners, "claimed", done.problem, done.status_code
    )


# Dead letters


@router.get("/dead-letters")
async def dead_letters_page(
    request: Request, who: Operator, pages: PagesDep, owners: Owners
) -> Response:
    letters = await owners.get("desk", "/v1/admin/dead-letters")
    return _page(request, pages, who, "console/dead_letters.html", letters=letters)


@router.post("/dead-letters/replay")
async def replay_dead_letter(
    request: Request, who: Operator, pages: PagesDep, owners: Owners
) -> Response:
    """One letter (``message_id``) or every one that is not poison; back to the page."""
    form = await request.form()
    command: dict[str, Any] = {"service": str(form.get("service", "")) or None}
    if form.get("message_id"):
        command["message_id"] = str(form["message_id"])
    else:
        command["all"] = True
    done = await owners.post("desk", "/v1/admin/dead-letters/replay", command)
    if done.ok:
        return _back(str(form.get("back", "")) or "/console/dead-letters", "replayed")
    letters = await owners.get("desk", "/v1/admin/dead-letters")
    response = _page(
        request, pages, who, "console/dead_letters.html", letters=letters, problem=done.problem
    )
    response.status_code = done.status_code
    return response


# Utilisation and the audit log


@router.get("/utilisation")
async def utilisation_page(
    request: Request, who: Operator, pages: PagesDep, owners: Owners
) -> Response:
    today = datetime.now(BANGKOK).date()
    first, _e1 = _day_of(
        request.query_params.get("from") or (today - timedelta(days=6)).isoformat()
    )
    last, _e2 = _day_of(request.query_params.get("to") or today.isoformat())
    params = {"from": first.isoformat(), "to": last.isoformat()}
    if province := request.query_params.get("province"):
        params["province"] = province
    found = await owners.get("allocator", "/v1/admin/utilisation", params)
    label = pages.gettext(request)("Hours booked of the hours available, per day")
    return _page(
        request,
        pages,
        who,
        "console/utilisation.html",
        found=found,
        chart=utilisation_chart(found.items(), label=label) if found.ok else None,
        first=first,
        last=last,
        province=province or "",
    )


def _audit_filters(request: Request) -> dict[str, str]:
    """The audit log's filters as the desk takes them: days typed the Thai way
    (``3/12/2569``) become ISO days; a day that is no day goes as typed, and the desk's
    answer names the field."""
    filters = {k: v for k in AUDIT_FILTERS if (v := request.query_params.get(k, "").strip())}
    for field in ("from", "to"):
        if field in filters:
            with contextlib.suppress(DateInputError):
                filters[field] = parse_date(filters[field]).isoformat()
    return filters


@router.get("/audit")
async def audit_page(request: Request, who: Operator, pages: PagesDep, owners: Owners) -> Response:
    filters = _audit_filters(request)
    if cursor := request.query_params.get("cursor"):
        filters["cursor"] = cursor
    found = await owners.get("desk", "/v1/admin/audit", filters)
    return _page(
        request,
        pages,
        who,
        "console/audit.html",
        found=found,
        filters=filters,
        actions=AUDIT_ACTIONS,
        outcomes=AUDIT_OUTCOMES,
        actor_kinds=ACTOR_KINDS,
        csv_query=urlencode({k: v for k, v in filters.items() if k != "cursor"}),
    )


@router.get("/audit.csv")
async def audit_csv(request: Request, owners: Owners) -> Response:
    params = {**_audit_filters(request), "format": "csv"}
    answer = await owners.raw("desk", "/v1/admin/audit", params)
    if answer is None:
        return Response("the audit log is unavailable", status_code=503, media_type="text/plain")
    content, media_type = answer
    return Response(
        content,
        media_type=media_type,
        headers={"Content-Disposition": 'attachment; filename="dopa-vcs-audit.csv"', **NO_STORE},
    )


# Invitations


@router.get("/invite")
async def invite_form(request: Request, who: Operator, pages: PagesDep) -> Response:
    return _page(request, pages, who, "console/invite.html", form={}, error=None, link=None)


@router.post("/invite")
async def invite_person(
    request: Request, who: Operator, pages: PagesDep, accounts: AccountsDep
) -> Response:
    """An operator invites an office's person or an operator within its own provinces; the
    link is shown once, to hand over."""
    _ = pages.gettext(request)
    form = {k: str(v).strip() for k, v in (await request.form()).items() if k != "csrftoken"}
    kind = form.get("kind", "office")
    try:
        person = NewPerson.new(
            email=form.get("email", ""),
            name=form.get("name", ""),
            district_code=form.get("district") if kind == "office" else None,
            region=form.get("region") or None if kind == "region" else None,
            provinces=(form.get("province", ""),) if kind == "province" else (),
        )
    except ValueError as exc:
        return _invite_page(request, pages, who, form, str(exc))
    if "@" not in person.email:
        return _invite_page(request, pages, who, form, _("Give the person's e-mail address."))
    refusal = invite_refusal(who.principal, person)
    if refusal is not None:
        return _invite_page(request, pages, who, form, refusal, status_code=403)
    try:
        token = await accounts.invite(person, by=who.principal)
    except EmailTaken:
        return _invite_page(
            request, pages, who, form, _("This e-mail address already has an account."), 409
        )
    public = request.app.state.public_url.rstrip("/")
    return _page(
        request,
        pages,
        who,
        "console/invite.html",
        form={},
        error=None,
        link=f"{public}/invite/{token}",
        invited=person,
    )


def _invite_page(
    request: Request,
    pages: Pages,
    who: SignedIn,
    form: dict[str, str],
    error: str,
    status_code: int = 422,
) -> Response:
    response = _page(request, pages, who, "console/invite.html", form=form, error=error, link=None)
    response.status_code = status_code
    return response
