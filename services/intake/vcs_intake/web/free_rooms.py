"""The new-request form's hint: how many rooms of the office's province are still free.

The form's script (``app.js``) asks ``/requests/new/free-rooms`` with what is
typed (the form's own field names) whenever the date, the times or the number of
participants change. The fields are read by the form's own parser
(:class:`~vcs_intake.web.forms.RequestForm`), so a date typed in the Buddhist Era
means the same here as when the form is sent. The allocator owns rooms and
bookings and answers ``GET /v1/availability`` for the signed-in person through
the gateway (its own district only). A hint only: the database decides when the
request is allocated, and the text says so.

The answer is JSON ``{"free": n, "text": "…"}`` with the sentence in the page's
language; ``204`` when the fields are not complete yet or the allocator cannot
answer (the form works without the hint).
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse, Response

from vcs_intake.gateway import Gateway, GatewayDep, OwnerUnavailable
from vcs_intake.web.account_pages import PagesDep
from vcs_intake.web.forms import RequestForm
from vcs_intake.web.rendering import NO_STORE
from vcs_intake.web.session import Person
from vcs_shared.auth import Principal

router = APIRouter(include_in_schema=False)

HINT_FIELDS = ("date", "start_time", "end_time", "participants")


async def ask_allocator(
    gateway: Gateway, principal: Principal, district_code: str, form: RequestForm
) -> dict[str, object] | None:
    """The allocator's availability for the typed window and size, or None when the fields
    do not make a window yet (or the allocator does not answer)."""
    request = form.to_request(district_code, now=datetime.now(UTC))
    if request is None:
        return None
    params = {
        "district_code": district_code,
        "starts_at": request.starts_at.isoformat(),
        "ends_at": request.ends_at.isoformat(),
        "participants": str(request.participants),
    }
    try:
        answer = await gateway.call(
            principal, "allocator", "GET", "/v1/availability", params=params
        )
    except OwnerUnavailable:
        return None
    if answer.status_code != status.HTTP_200_OK:
        return None
    body: dict[str, object] = answer.json()
    return body


@router.get("/requests/new/free-rooms")
async def free_rooms_hint(
    request: Request,
    who: Person,
    pages: PagesDep,
    gateway: GatewayDep,
) -> Response:
    district_code = who.person.district_code
    if district_code is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT, headers=NO_STORE)
    typed = {name: request.query_params.get(name, "") for name in HINT_FIELDS}
    form = RequestForm.blank(who.person)
    # Only the window and the size matter here: the other fields get harmless stand-ins.
    form.values.update(typed, title="-", contact_phone=form.values["contact_phone"] or "000")
    found = await ask_allocator(gateway, who.principal, district_code, form)
    if found is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT, headers=NO_STORE)
    _ = pages.gettext(request)
    free = int(str(found["free"]))
    participants = int(str(found["participants"]))
    largest = int(str(found["largest_capacity"]))
    if free > 0:
        text = _(
            "Rooms of your province still free for this time and number of participants: "
            "%(free)d. This is a hint: a room is yours only once the request is answered."
        ) % {"free": free}
    elif largest < participants:
        text = _("No room holds %(participants)d people; the largest holds %(largest)d.") % {
            "participants": participants,
            "largest": largest,
        }
    else:
        text = _(
            "No room of your province is free at this time. Try another time or day, "
            "or fewer participants."
        )
    return JSONResponse({"free": free, "text": text}, headers=NO_STORE)
