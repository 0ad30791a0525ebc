"""A real local OpenID Connect provider (``oidc-provider-mock``, a Flask server speaking OIDC on
a port of its own) for the single sign-on tests, and the intake settings that point at it.

Import :func:`provider` into a test module to use the fixture (and name it in ``__all__``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from oidc_provider_mock import run_server_in_thread  # type: ignore[import-untyped]

CLIENT_ID = "dopa-vcs-test"


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    """The provider's issuer URL; it asks the nonce of every authorization (as ThaID does)."""
    with run_server_in_thread(port=0, require_nonce=True) as server:
        yield f"http://localhost:{server.server_port}"


def sso_env(issuer: str, intake_url: str) -> dict[str, str]:
    return {
        "VCS_OIDC_ISSUER": issuer,
        "VCS_OIDC_CLIENT_ID": CLIENT_ID,
        "VCS_OIDC_CLIENT_SECRET": "a-test-client-secret",
        "VCS_PUBLIC_URL": intake_url,
    }


async def at_provider(issuer: str, email: str, **claims: Any) -> None:
    """The person's account at the provider (its claims, as the provider vouches for them)."""
    async with httpx.AsyncClient(base_url=issuer, timeout=10) as admin:
        answer = await admin.put(f"/users/{email}", json={"email": email, **claims})
        assert answer.status_code == 204
