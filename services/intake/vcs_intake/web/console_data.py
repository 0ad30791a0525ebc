"""What the console shows, asked of the owners' internal APIs for the signed-in operator.

The intake renders the console but owns none of its data but the requests: pools
and reservations are the allocator's, the read models, support tickets, the audit
log and dead letters the desk's, deliveries the notifier's. Each call goes through
the intake's :class:`~vcs_intake.gateway.Gateway` with an internal token minted for
the signed-in person, so the owner applies that person's provinces itself, exactly
as for a bearer token. An answer the page cannot use (the owner down, a refusal)
comes back as a :class:`Fetched` with the problem in the person's language, never
as an exception, so the rest of the page still shows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import status

from vcs_intake.gateway import Gateway, OwnerUnavailable
from vcs_intake.web.i18n import N_
from vcs_shared.auth import Principal

OWNER_NAMES = {
    "allocator": N_("room allocator"),
    "desk": N_("operators' desk service"),
    "notifier": N_("notifier"),
}


@dataclass(frozen=True, slots=True)
class Fetched:
    """An owner's answer: its JSON body, or why there is none (in the reader's language)."""

    body: Any = None
    problem: str | None = None
    status_code: int = status.HTTP_200_OK

    @property
    def ok(self) -> bool:
        return self.problem is None

    def items(self) -> list[Any]:
        """A list answer's items (``[...]`` or ``{"items": [...]}``), none on a problem."""
        if isinstance(self.body, dict):
            found = self.body.get("items")
            return list(found) if isinstance(found, list) else []
        return list(self.body) if isinstance(self.body, list) else []


class OwnerApis:
    """The owners' internal APIs, called for one signed-in operator."""

    def __init__(
        self, gateway: Gateway, principal: Principal, gettext: Callable[[str], str]
    ) -> None:
        self._gateway = gateway
        self._principal = principal
        self._ = gettext

    async def get(
        self, owner: str, path: str, params: Mapping[str, str | Sequence[str]] | None = None
    ) -> Fetched:
        return await self._call(owner, "GET", path, params=params)

    async def post(self, owner: str, path: str, body: object) -> Fetched:
        return await self._call(owner, "POST", path, json=body)

    async def raw(
        self, owner: str, path: str, params: Mapping[str, str | Sequence[str]] | None = None
    ) -> tuple[bytes, str] | None:
        """A non-JSON answer (a CSV export) as bytes and its content type, or None."""
        try:
            answer = await self._gateway.call(self._principal, owner, "GET", path, params=params)
        except OwnerUnavailable:
            return None
        if answer.status_code != status.HTTP_200_OK:
            return None
        return answer.content, answer.headers.get("content-type", "application/octet-stream")

    async def _call(
        self,
        owner: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | Sequence[str]] | None = None,
        json: object | None = None,
    ) -> Fetched:
        _ = self._
        name = _(OWNER_NAMES.get(owner, owner))
        try:
            answer = await self._gateway.call(
                self._principal, owner, method, path, params=params, json=json
            )
        except OwnerUnavailable as exc:
            if exc.sent:
                problem = _(
                    "The %(owner)s did not answer; it may have done it: look before trying again."
                )
            else:
                problem = _("The %(owner)s is not reachable right now; try again shortly.")
            return Fetched(problem=problem % {"owner": name}, status_code=503)
        try:
            body = answer.json()
        except ValueError:
            body = None
        if answer.is_success:
            return Fetched(body=body, status_code=answer.status_code)
        if answer.status_code in (status.HTTP_404_NOT_FOUND, status.HTTP_405_METHOD_NOT_ALLOWED):
            detail = _detail(body)
            if detail in (None, "Not Found", "Method Not Allowed"):  # no such route there yet
                problem = _("The %(owner)s does not offer this yet.") % {"owner": name}
                return Fetched(problem=problem, status_code=answer.status_code)
        problem = _detail(body) or _("The %(owner)s refused (HTTP %(status)s).") % {
            "owner": name,
            "status": answer.status_code,
        }
        return Fetched(body=body, problem=problem, status_code=answer.status_code)


def _detail(body: Any) -> str | None:
    """FastAPI's ``detail``, as one line (a list of field errors joined)."""
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        parts = []
        for entry in detail:
            if isinstance(entry, dict):
                where = ".".join(str(p) for p in entry.get("loc", [])[1:])
                parts.append(f"{where}: {entry.get('msg', '')}" if where else str(entry.get("msg")))
        return "; ".join(parts) or None
    return None
