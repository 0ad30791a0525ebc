"""The front door forwards: calls for data another service owns go to its internal API.

The intake is the one address people and machines use. It authenticates the
caller (signature, expiry, lifetime cap, revocation), then forwards calls under
a path prefix that another service owns to that service's internal HTTP API,
with an internal token minted for this one call
(:meth:`~vcs_shared.auth.TokenCodec.internal_token`) in place of the caller's
own. The owner applies its scope rules itself and answers; the answer (status,
body, content type) goes back to the caller as it is, streamed.

* :class:`Gateway` knows the owners' addresses; :meth:`Gateway.forward` passes
  a request through for an authenticated :class:`~vcs_shared.auth.Principal`
  (a bearer token's today, a signed-in person's as well later).
* :func:`forwarding_routes` mounts the prefixes an owner serves:
  ``forwarding_routes({"/v1/admin/pools": "allocator"}, dependencies=[...])``; a prefix may
  hold path parameters (``/v1/admin/requests/{request_id}/redeliver``), and the most
  specific (longest) prefix wins.

An owner that is down, or does not answer in time, is a ``503`` saying which
and whether the outcome is known, never a 500 from an exception.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Annotated

import httpx
import structlog
from fastapi import APIRouter, Depends, Request, status
from fastapi.params import Depends as DependsParam
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from vcs_shared.auth import Principal, TokenCodec
from vcs_shared.http_auth import CurrentPrincipal

log = structlog.get_logger(__name__)

FORWARDED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
REQUEST_HEADERS = (
    "content-type",
    "accept",
    "x-request-id",
    "last-event-id",
    "idempotency-key",
)
RESPONSE_HEADERS = ("content-type", "content-disposition", "cache-control", "retry-after")
TIMEOUT = httpx.Timeout(30.0, connect=3.0)
STREAMING = httpx.Timeout(None, connect=3.0)
"""For an answer that lasts as long as someone watches (the live feed): no read timeout."""
RETRY_AFTER_SECONDS = "5"


class Gateway:
    """Calls the owners' internal APIs for an authenticated caller."""

    def __init__(
        self, client: httpx.AsyncClient, codec: TokenCodec, owners: Mapping[str, str]
    ) -> None:
        self._client = client
        self._codec = codec
        self._owners = {name: url.rstrip("/") for name, url in owners.items()}

    async def forward(
        self,
        request: Request,
        principal: Principal,
        owner: str,
        *,
        timeouts: httpx.Timeout = TIMEOUT,
    ) -> Response:
        """Passes ``request`` to ``owner`` under the same path and query, and its answer back."""
        headers = {
            name: request.headers[name] for name in REQUEST_HEADERS if name in request.headers
        }
        headers["authorization"] = f"Bearer {self._codec.internal_token(principal)}"
        headers["x-request-id"] = request.state.http_request_id  # the owner logs the same id
        # The path as the caller sent it, still percent-encoded: decoded, a control character
        # in it would be no URL at all.
        raw_path = request.scope.get("raw_path") or request.url.path.encode()
        upstream = self._client.build_request(
            request.method,
            self._owners[owner] + raw_path.decode("ascii", errors="replace"),
            params=httpx.QueryParams(request.url.query),
            content=await request.body(),
            headers=headers,
            timeout=timeouts,
        )
        try:
            answer = await self._client.send(upstream, stream=True)
        except httpx.HTTPError as exc:
            return unavailable(owner, exc, sent=request.method != "GET")
        if answer.status_code == status.HTTP_401_UNAUTHORIZED:
            await answer.aclose()  # the caller's token passed here: ours was refused there
            log.error("gateway.internal_token_refused", owner=owner)
            return _service_unavailable(
                f"the {owner} refused the intake's internal token (is VCS_JWT_SECRET the same "
                "on both?); nothing was done"
            )
        return StreamingResponse(
            _relay(answer, owner),
            status_code=answer.status_code,
            headers={k: answer.headers[k] for k in RESPONSE_HEADERS if k in answer.headers},
            background=BackgroundTask(answer.aclose),
        )

    async def call(
        self,
        principal: Principal,
        owner: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | Sequence[str]] | None = None,
        json: object | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """The intake's own call of an owner's internal API for ``principal`` (the console's
        pages); the whole answer, read. :class:`OwnerUnavailable` when it cannot be had."""
        headers = {
            **(headers or {}),
            "authorization": f"Bearer {self._codec.internal_token(principal)}",
        }
        try:
            answer = await self._client.request(
                method,
                self._owners[owner] + path,
                params=httpx.QueryParams(params or {}),
                json=json,
                headers=headers,
                timeout=TIMEOUT,
            )
        except httpx.HTTPError as exc:
            log.warning("gateway.owner_unavailable", owner=owner, error=repr(exc))
            sent = method != "GET" and not isinstance(
                exc, httpx.ConnectError | httpx.ConnectTimeout
            )
            raise OwnerUnavailable(owner, sent=sent) from exc
        if answer.status_code == status.HTTP_401_UNAUTHORIZED:
            log.error("gateway.internal_token_refused", owner=owner)
            raise OwnerUnavailable(owner, sent=False)
        return answer


class OwnerUnavailable(Exception):
    """An owner's internal API could not be reached or did not answer (``sent``: the call
    may have taken effect)."""

    def __init__(self, owner: str, *, sent: bool) -> None:
        super().__init__(f"the {owner} is unavailable")
        self.owner = owner
        self.sent = sent


async def _relay(answer: httpx.Response, owner: str) -> AsyncIterator[bytes]:
    """The owner's body as it comes; a connection lost midway ends the body early (the
    status has been sent by then) and is logged, not raised into the server."""
    try:
        async for chunk in answer.aiter_bytes():
            yield chunk
    except httpx.HTTPError as exc:
        log.warning("gateway.body_interrupted", owner=owner, error=repr(exc))
    finally:
        await answer.aclose()


def unavailable(owner: str, exc: httpx.HTTPError, *, sent: bool) -> JSONResponse:
    """503 naming the owner; whether the call may have taken effect is said plainly."""
    log.warning("gateway.owner_unavailable", owner=owner, error=repr(exc))
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return _service_unavailable(
            f"the {owner} is not reachable right now; nothing was done, try again shortly"
        )
    outcome = "the outcome is unknown: check before retrying" if sent else "try again shortly"
    return _service_unavailable(f"the {owner} did not answer ({type(exc).__name__}); {outcome}")


def _service_unavailable(detail: str) -> JSONResponse:
    return JSONResponse(
        {"detail": detail},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


def get_gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


GatewayDep = Annotated[Gateway, Depends(get_gateway)]


def forwarding_routes(
    prefixes: Mapping[str, str], *, dependencies: Sequence[DependsParam] = ()
) -> APIRouter:
    """A router forwarding every path under each prefix (and the prefix itself) to its owner.

    ``dependencies`` guard the routes at the front door (the operator role for
    ``/v1/admin``); the owner checks the caller again from the internal token.
    The routes are left out of the intake's OpenAPI document: each owner
    describes its own API.
    """
    router = APIRouter(dependencies=list(dependencies))
    # The longest prefix first: /v1/admin/requests/{id}/redeliver (the notifier's) is matched
    # before a shorter /v1/admin/requests (another owner's) would take it.
    for prefix, owner in sorted(prefixes.items(), key=lambda item: -len(item[0])):
        for path in (prefix, prefix + "/{rest:path}"):
            router.add_api_route(
                path, _forwarder(owner), methods=list(FORWARDED_METHODS), include_in_schema=False
            )
    return router


def _forwarder(owner: str) -> Callable[..., Awaitable[Response]]:
    """The endpoint for one owner (the owner is fixed here, never taken from the request)."""

    async def forward(
        request: Request, principal: CurrentPrincipal, gateway: GatewayDep
    ) -> Response:
        return await gateway.forward(request, principal, owner)

    return forward
