"""The clerks' support page (``/support``): ask the centre for staff without a meeting, and
see each ticket of the office (waiting, who helps and when, done).

Tickets are the desk's: the page asks it through the gateway for the signed-in person
(``POST``/``GET /v1/support-requests``), who is an office's person; the desk applies the
same rules as for an office token. The form carries an Idempotency-Key, so a double click
or a reload asks once. A bad field shows a Thai message beside it and keeps what was typed.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from vcs_intake.gateway import GatewayDep, OwnerUnavailable
from vcs_intake.people.accounts import SignedIn
from vcs_intake.web.account_pages import PagesDep
from vcs_intake.web.console_data import Fetched, OwnerApis
from vcs_intake.web.forms import FALLBACK_MESSAGES
from vcs_intake.web.i18n import N_
from vcs_intake.web.rendering import Pages
from vcs_intake.web.session import Person

router = APIRouter(include_in_schema=False)

FIELDS = ("topic", "contact_name", "contact_email", "contact_phone")
FIELD_OF_LOCATION = {
    "topic": "topic",
    "contact.name": "contact_name",
    "contact.email": "contact_email",
    "contact.phone": "contact_phone",
}
MESSAGES = {
    **{k: v for k, v in FALLBACK_MESSAGES.items() if k.startswith("contact_")},
    "topic": N_("Write what you need help with (at most 300 characters, on one line)."),
}


@dataclass(frozen=True, slots=True)
class SupportForm:
    """What was typed, and a message per field that is wrong (``form``: the whole form)."""

    values: dict[str, str]
    errors: dict[str, str]


@router.get("/support")
async def support_page(
    request: Request, who: Person, pages: PagesDep, gateway: GatewayDep
) -> Response:
    if who.person.district_code is None:
        return RedirectResponse("/console/support", status_code=303)
    values = {
        "topic": "",
        "contact_name": who.person.name,
        "contact_email": who.person.email,
        "contact_phone": who.person.phone or "",
    }
    return await _page(request, who, pages, gateway, values, {})


@router.post("/support")
async def ask_for_support(
    request: Request, who: Person, pages: PagesDep, gateway: GatewayDep
) -> Response:
    if who.person.district_code is None:
        return RedirectResponse("/console/support", status_code=303)
    form = await request.form()
    values = {name: str(form.get(name, "")).strip() for name in FIELDS}
    key = str(form.get("idempotency_key", "")) or uuid.uuid4().hex
    body = {
        "topic": values["topic"],
        "contact": {
            "name": values["contact_name"],
            "email": values["contact_email"],
            "phone": values["contact_phone"],
        },
    }
    errors: dict[str, str] = {}
    try:
        answer = await gateway.call(
            who.principal,
            "desk",
            "POST",
            "/v1/support-requests",
            json=body,
            headers={"Idempotency-Key": key},
        )
    except OwnerUnavailable:
        pass
    else:
        if answer.is_success:
            return RedirectResponse("/support?done=asked", status_code=303)
        if answer.status_code == 422:
            with contextlib.suppress(ValueError):
                errors = field_errors(answer.json())
    if not errors:
        errors = {"form": N_("The communication centre could not take it; try again shortly.")}
    return await _page(request, who, pages, gateway, values, errors, key=key, status_code=422)


def field_errors(body: Any) -> dict[str, str]:
    """The form field of each error the desk named, with the page's own message for it."""
    errors: dict[str, str] = {}
    detail = body.get("detail") if isinstance(body, dict) else None
    for entry in detail if isinstance(detail, list) else []:
        where = (
            ".".join(str(p) for p in entry.get("loc", [])[1:]) if isinstance(entry, dict) else ""
        )
        name = FIELD_OF_LOCATION.get(where)
        if name is not None:
            errors[name] = MESSAGES[name]
    return errors


async def _page(
    request: Request,
    who: SignedIn,
    pages: Pages,
    gateway: GatewayDep,
    values: dict[str, str],
    errors: dict[str, str],
    *,
    key: str | None = None,
    status_code: int = 200,
) -> Response:
    tickets: Fetched = await OwnerApis(gateway, who.principal, pages.gettext(request)).get(
        "desk", "/v1/support-requests"
    )
    return pages.render(
        request,
        "support.html",
        who=who,
        form=SupportForm(values, errors),
        key=key or uuid.uuid4().hex,
        tickets=tickets,
        asked=request.query_params.get("done") == "asked",
        status_code=status_code,
    )
