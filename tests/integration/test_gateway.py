"""The intake is the one front door: it forwards what other services own, with an internal
token it mints per call after its own checks, so a revoked token stops working everywhere;
an owner that is down is a clear 503, never a 500.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import jwt
import pytest

from tests.support.auth import TEST_JWT_SECRET, bearer, codec, office_token, operator_token
from tests.support.cli import vcs
from tests.support.services import StartServices
from tests.support.waiting import eventually
from vcs_shared.auth import ALGORITHM

pytestmark = pytest.mark.integration

FORWARDED = [
    ("GET", "/v1/admin/pools", "allocator"),
    ("GET", "/v1/admin/reservations", "allocator"),
    ("GET", "/v1/admin/dead-letters", "desk"),
]


async def test_an_owner_that_is_down_is_a_503_naming_it_and_nothing_is_done(
    start_services: StartServices, http: httpx.AsyncClient
) -> None:
    await start_services("intake")  # nothing listens on the allocator's and the desk's ports

    for method, path, owner in FORWARDED:
        answer = await http.request(method, path)
        assert answer.status_code == 503, (path, answer.text)
        assert answer.json()["detail"].startswith(f"the {owner} is not reachable"), path
        assert answer.headers["retry-after"] == "5"
    reload = await http.post(
        "/v1/admin/pools/reload", content=b"x", headers={"content-type": "text/csv"}
    )
    assert reload.status_code == 503
    assert "nothing was done" in reload.json()["detail"]
    as_office = await http.get("/v1/admin/pools", headers=bearer(office_token()))
    assert as_office.status_code == 403  # the front door's own checks come first


async def test_a_revoked_token_is_refused_by_every_api_within_seconds(
    start_services: StartServices,
    http: httpx.AsyncClient,
    service_env: dict[str, str],
    tmp_path: Path,
) -> None:
    await start_services("allocator", "desk", "intake")
    token = operator_token("somsri", region="12")
    for _, path, _ in FORWARDED:
        assert (await http.get(path, headers=bearer(token))).status_code == 200, path

    revoked = await vcs(
        "token",
        "revoke",
        token,
        cwd=tmp_path,
        VCS_JWT_SECRET=TEST_JWT_SECRET,
        VCS_MONGODB_URL=service_env["VCS_MONGODB_URL"],
        VCS_NAMESPACE=service_env["VCS_NAMESPACE"],
    )
    assert revoked.stdout.startswith("revoked"), revoked.stderr

    for _, path, _ in FORWARDED:

        async def refused_now(path: str = path) -> httpx.Response | None:
            answer = await http.get(path, headers=bearer(token))
            return answer if answer.status_code == 401 else None

        # The intake reads the revocation list at most every 2 s (README: within ~2 s).
        refused = await eventually(refused_now, timeout=10, what=f"{path} refusing the token")
        assert "revoked" in refused.json()["detail"]
    behind_the_door = [
        service_env["VCS_ALLOCATOR_URL"] + "/v1/admin/pools",
        service_env["VCS_DESK_URL"] + "/v1/admin/dead-letters",
    ]
    async with httpx.AsyncClient(timeout=30) as direct:
        for url in behind_the_door:  # they never took the caller's own token
            own_token = await direct.get(url, headers=bearer(token))
            assert own_token.status_code == 401, url
            assert "internal" in own_token.json()["detail"]


async def test_the_front_door_refuses_internal_tokens_and_tokens_over_their_cap(
    start_services: StartServices, http: httpx.AsyncClient
) -> None:
    await start_services("intake")
    internal = codec.internal_token(codec.verify(operator_token()))
    now = datetime.now(UTC)
    too_long = jwt.encode(
        {
            "iss": "dopa-vcs",
            "sub": "operator:marathon",
            "role": "operator",
            "region": "12",
            "iat": int(now.timestamp()),
            "exp": int((now + timedelta(hours=13)).timestamp()),
            "jti": "over-the-cap",
        },
        TEST_JWT_SECRET,
        algorithm=ALGORITHM,
    )

    with_internal = await http.get("/v1/admin/pools", headers=bearer(internal))
    with_too_long = await http.get("/v1/requests/x", headers=bearer(too_long))

    assert with_internal.status_code == 401
    assert "internal token is not accepted here" in with_internal.json()["detail"]
    assert with_too_long.status_code == 401
    assert "over the cap of 12 hours" in with_too_long.json()["detail"]


async def test_forwarding_keeps_status_body_and_content_type(
    start_services: StartServices, http: httpx.AsyncClient, service_env: dict[str, str]
) -> None:
    await start_services("allocator", "intake")
    principal = codec.verify(operator_token())
    async with httpx.AsyncClient(base_url=service_env["VCS_ALLOCATOR_URL"], timeout=30) as direct:
        internal = bearer(codec.internal_token(principal))
        direct_answers = await asyncio.gather(
            direct.get("/v1/admin/pools/export", headers=internal),
            direct.get("/v1/admin/reservations", params={"date": "nonsense"}, headers=internal),
        )
    through = await asyncio.gather(
        http.get("/v1/admin/pools/export", headers=bearer(operator_token())),
        http.get("/v1/admin/reservations", params={"date": "nonsense"}),
    )

    for own, forwarded in zip(direct_answers, through, strict=True):
        assert forwarded.status_code == own.status_code
        assert forwarded.content == own.content
        assert forwarded.headers["content-type"] == own.headers["content-type"]
    assert through[1].status_code == 422
    assert "content-disposition" in through[0].headers


async def test_a_whole_pool_file_larger_than_other_bodies_goes_through_the_front_door(
    start_services: StartServices, http: httpx.AsyncClient, service_env: dict[str, str]
) -> None:
    await start_services("allocator", "intake")
    rows = [
        f"{40000000000 + n},300,47,passcode-{n},https://zoom.example/j/{40000000000 + n},"
        for n in range(1200)
    ]
    big = ("meeting_id,capacity,pool,passcode,join_url,active\n" + "\n".join(rows)).encode()
    assert len(big) > int(service_env.get("VCS_MAX_BODY_BYTES", 64 * 1024))

    reloaded = await http.post(
        "/v1/admin/pools/reload", content=big, headers={"content-type": "text/csv"}
    )
    elsewhere = await http.post(
        "/v1/requests", content=big, headers={"content-type": "application/json"}
    )

    assert reloaded.status_code == 200, reloaded.text
    assert reloaded.json()["loaded"] == 1200
    assert elsewhere.status_code == 422  # the ordinary limit still holds everywhere else
    assert elsewhere.json()["detail"][0]["type"] == "body_too_large"
