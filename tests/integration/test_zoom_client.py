"""The Zoom adapter against a fake Zoom API (a real local HTTP server): server-to-server OAuth
with Basic auth and a cached token, the passcode PATCHed with the bearer, 429 backed off, and
Zoom refusing or down reported as ZoomUnavailable (which the caller turns into its fallback)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.zoom_fake import ACCOUNT_ID, CLIENT_ID, CLIENT_SECRET, FakeZoom, Patched
from vcs_allocator.zoom import ZoomAccount, ZoomClient, ZoomUnavailable, new_passcode

pytestmark = pytest.mark.integration


def account_of(zoom: FakeZoom, *, secret: str = CLIENT_SECRET) -> ZoomAccount:
    return ZoomAccount(
        account_id=ACCOUNT_ID,
        client_id=CLIENT_ID,
        client_secret=secret,
        api_url=zoom.api_url,
        oauth_url=zoom.oauth_url,
    )


@pytest.fixture
async def client(zoom: FakeZoom) -> AsyncIterator[ZoomClient]:
    client = ZoomClient(account_of(zoom))
    yield client
    await client.aclose()


async def test_passcodes_are_set_with_one_cached_token(zoom: FakeZoom, client: ZoomClient) -> None:
    first, second = new_passcode(), new_passcode()

    await client.set_passcode("81234567890", first)
    await client.set_passcode("81234567891", second)

    assert zoom.patches == [Patched("81234567890", first), Patched("81234567891", second)]
    assert len(zoom.tokens_issued) == 1


async def test_a_wrong_client_secret_sets_nothing(zoom: FakeZoom) -> None:
    client = ZoomClient(account_of(zoom, secret="not-the-secret"))
    try:
        with pytest.raises(ZoomUnavailable, match="token: HTTP 401"):
            await client.set_passcode("81234567890", new_passcode())
    finally:
        await client.aclose()

    assert (zoom.tokens_issued, zoom.patches) == ([], [])


async def test_a_429_is_backed_off_and_the_passcode_still_set(
    zoom: FakeZoom, client: ZoomClient
) -> None:
    zoom.rate_limit_next = 2
    passcode = new_passcode()

    await client.set_passcode("81234567890", passcode)

    assert zoom.rate_limited == 2
    assert zoom.patches == [Patched("81234567890", passcode)]


async def test_rate_limited_past_every_attempt_is_unavailable(
    zoom: FakeZoom, client: ZoomClient
) -> None:
    zoom.rate_limit_next = 100
    zoom.retry_after = "0"

    with pytest.raises(ZoomUnavailable, match="HTTP 429"):
        await client.set_passcode("81234567890", new_passcode())

    assert (zoom.rate_limited, zoom.patches) == (4, [])


async def test_zoom_down_is_unavailable_and_back_up_works_again(
    zoom: FakeZoom, client: ZoomClient
) -> None:
    zoom.stop()
    with pytest.raises(ZoomUnavailable):
        await client.set_passcode("81234567890", new_passcode())

    zoom.start()
    passcode = new_passcode()
    await client.set_passcode("81234567890", passcode)
    assert zoom.passcodes_of("81234567890") == [passcode]


def test_passcodes_are_fresh_digits_zoom_accepts() -> None:
    passcodes = {new_passcode() for _ in range(50)}

    assert len(passcodes) == 50
    assert all(p.isdigit() and len(p) <= 10 for p in passcodes)
