"""The offices' channel settings on the notifier's internal API (reached through the intake,
which forwards ``/v1/offices/*`` with an internal token).

* ``PUT    /v1/offices/{district_code}/webhook`` ``{"url": "https://…"}`` — registers the URL
  and answers a new signing secret, once (a PUT again rotates it: the secret before keeps
  signing beside the new one for a day).
* ``POST   /v1/offices/{district_code}/webhook/rotate`` — a new secret for the same URL.
* ``GET    /v1/offices/{district_code}/webhook`` — the URL (never the secret).
* ``DELETE /v1/offices/{district_code}/webhook`` — no more webhook messages.
* ``PUT    /v1/offices/{district_code}/line`` ``{"group_id": "C…"}`` / ``DELETE`` — the LINE group.

An office token sets only its own district, an operator only districts of its provinces
(``403`` otherwise); an unknown district is ``404``. A URL that resolves to a loopback,
private or link-local address is ``422`` naming ``url``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field

from vcs_notifier.office_channels import (
    NotYours,
    OfficeChannels,
    UnknownOffice,
    WebhookSecret,
    office_for,
)
from vcs_notifier.webhook_guard import MAX_URL_LENGTH, UnsafeUrl
from vcs_shared.http_auth import CurrentPrincipal
from vcs_shared.offices import Office

router = APIRouter(
    prefix="/v1/offices/{district_code}",
    tags=["office channels"],
    responses={
        401: {"description": "Not an internal token minted by the intake"},
        403: {"description": "Another office's district, or one outside the operator's provinces"},
        404: {"description": "No district office has this code"},
    },
)


def get_channels(request: Request) -> OfficeChannels:
    channels: OfficeChannels = request.app.state.office_channels
    return channels


async def caller_office(
    principal: CurrentPrincipal,
    district_code: Annotated[str, Path(pattern=r"^[0-9]{4}$", description="e.g. 4701")],
) -> Office:
    try:
        return office_for(principal, district_code)
    except UnknownOffice as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from exc
    except NotYours as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=str(exc)) from exc


Channels = Annotated[OfficeChannels, Depends(get_channels)]
CallerOffice = Annotated[Office, Depends(caller_office)]


class WebhookTarget(BaseModel):
    url: str = Field(
        min_length=1,
        max_length=MAX_URL_LENGTH,
        description="Where the office's events go (https; not an internal address)",
        examples=["https://eoffice.sakonnakhon.go.th/vcs-webhook"],
    )


class WebhookRegistered(BaseModel):
    """The registration, with its new signing secret: shown this once, keep it."""

    district_code: str
    url: str
    secret: str = Field(description="whsec_…: verify the webhook-signature header with it")
    previous_secret_valid_until: datetime | None = Field(
        description="Until when the secret before this one still signs (both are sent)"
    )


class WebhookShown(BaseModel):
    district_code: str
    url: str
    updated_at: datetime


class LineGroup(BaseModel):
    group_id: str = Field(
        pattern=r"^[CRU][0-9a-f]{32}$",
        description="The LINE group (C…), room (R…) or user (U…) id the bot pushes to",
    )


def _registered(office: Office, answer: WebhookSecret) -> WebhookRegistered:
    return WebhookRegistered(
        district_code=office.district_code,
        url=answer.registration.url,
        secret=answer.secret,
        previous_secret_valid_until=answer.previous_valid_until,
    )


@router.put(
    "/webhook",
    response_model=WebhookRegistered,
    responses={422: {"description": "A URL refused (which field, why)"}},
)
async def put_webhook(
    body: WebhookTarget, office: CallerOffice, channels: Channels, principal: CurrentPrincipal
) -> WebhookRegistered:
    """Registers (or changes) the office's webhook and answers a new signing secret, once."""
    try:
        await channels.policy.check(body.url)
    except UnsafeUrl as exc:
        raise RequestValidationError(
            [{"loc": ("body", "url"), "msg": f"URL refused: {exc}", "type": "value_error"}]
        ) from exc
    return _registered(office, await channels.register_webhook(office, body.url, principal))


@router.post("/webhook/rotate", response_model=WebhookRegistered)
async def rotate_webhook_secret(
    office: CallerOffice, channels: Channels, principal: CurrentPrincipal
) -> WebhookRegistered:
    """A new signing secret for the registered URL (the one before keeps signing for a day)."""
    answer = await channels.rotate_secret(office, principal)
    if answer is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="this office has no webhook")
    return _registered(office, answer)


@router.get("/webhook", response_model=WebhookShown)
async def get_webhook(office: CallerOffice, channels: Channels) -> WebhookShown:
    registration = await channels.webhooks.registration(office.district_code)
    if registration is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="this office has no webhook")
    return WebhookShown(
        district_code=office.district_code,
        url=registration.url,
        updated_at=registration.updated_at,
    )


@router.delete("/webhook", status_code=status.HTTP_204_NO_CONTENT)
async def delete_webhook(
    office: CallerOffice, channels: Channels, principal: CurrentPrincipal
) -> Response:
    if not await channels.remove_webhook(office, principal):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="this office has no webhook")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/line", response_model=LineGroup)
async def put_line_group(
    body: LineGroup, office: CallerOffice, channels: Channels, principal: CurrentPrincipal
) -> LineGroup:
    """The office's LINE group: its messages are pushed there too (when LINE is configured)."""
    await channels.set_line_group(office, body.group_id, principal)
    return body


@router.delete("/line", status_code=status.HTTP_204_NO_CONTENT)
async def delete_line_group(
    office: CallerOffice, channels: Channels, principal: CurrentPrincipal
) -> Response:
    await channels.set_line_group(office, None, principal)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
