"""Signing and sending one webhook message, per the Standard Webhooks convention.

The signature is made by the ``standardwebhooks`` package (the reference
implementation receivers verify with), not by hand: ``webhook-id`` (the
message id, the same on every retry so a receiver can drop a second copy),
``webhook-timestamp`` and ``webhook-signature``, which carries one ``v1,…``
signature per valid secret, so a receiver still holding the secret before a
rotation verifies too. The connection goes to the address the
:class:`~vcs_notifier.webhook_guard.NetworkPolicy` checked just before
(TLS still verifies the host name).
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

import httpx
from standardwebhooks.webhooks import Webhook

from vcs_notifier.channels import PermanentFailure, TemporaryFailure
from vcs_notifier.webhook_guard import NetworkPolicy, Target, UnsafeUrl

SECRET_PREFIX = "whsec_"
CONTENT_TYPE = "application/cloudevents+json"
USER_AGENT = "DOPA-VCS-notifier/1 (Standard Webhooks)"


def new_secret() -> str:
    """A fresh signing secret (``whsec_`` and 32 random bytes in base64), shown to the
    office once."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signature_headers(
    secrets_in_use: Sequence[str], message_id: str, at: datetime, body: str
) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body``, signed with every secret given."""
    signatures = [Webhook(secret).sign(message_id, at, body) for secret in secrets_in_use]
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": " ".join(signatures),
    }


class WebhookSender:
    """Posts signed messages to checked addresses; what went wrong as a delivery failure."""

    def __init__(self, policy: NetworkPolicy, *, timeout: float = 10.0) -> None:
        self._policy = policy
        self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=False)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def check(self, url: str) -> Target:
        """:class:`UnsafeUrl` unless ``url`` may be called now."""
        return await self._policy.check(url)

    async def send(
        self, url: str, message_id: str, body: str, secrets_in_use: Sequence[str], at: datetime
    ) -> None:
        """Delivers ``body`` to ``url``: a 2xx answer. :class:`PermanentFailure` for a URL the
        policy refuses now; :class:`TemporaryFailure` for anything a later try may change
        (no connection, a timeout, any other status)."""
        try:
            target = await self._policy.check(url)
        except UnsafeUrl as exc:
            raise PermanentFailure(f"webhook URL refused: {exc}") from exc
        headers = {
            "content-type": CONTENT_TYPE,
            "user-agent": USER_AGENT,
            "host": _host_header(target),
            **signature_headers(secrets_in_use, message_id, at, body),
        }
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        try:
            response = await self._client.post(
                _pinned(target), content=body.encode(), headers=headers, extensions=extensions
            )
        except httpx.HTTPError as exc:
            raise TemporaryFailure(f"webhook not reached: {type(exc).__name__}: {exc}") from exc
        if not response.is_success:
            raise TemporaryFailure(f"webhook answered {response.status_code}")


def _pinned(target: Target) -> str:
    """The URL with its host replaced by the checked address."""
    parts = urlsplit(target.url)
    address = str(target.address)
    host = f"[{address}]" if target.address.version == 6 else address
    return urlunsplit(parts._replace(netloc=f"{host}:{target.port}"))


def _host_header(target: Target) -> str:
    default = 443 if target.scheme == "https" else 80
    return target.host if target.port == default else f"{target.host}:{target.port}"
