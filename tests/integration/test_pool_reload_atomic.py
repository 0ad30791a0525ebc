"""Issue 11.8 through the front door: an admin API reload and ``vcs pool load`` racing end as
one file after the other, whole; a file moving a Meeting ID from another pool is refused
unless its row says ``moved_from``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.integration.test_pool_admin import vcs
from tests.support.auth import bearer, operator_token
from tests.support.services import StartServices

pytestmark = pytest.mark.integration

OPERATOR = operator_token("somsri", region="12")
HEADER = "meeting_id,capacity,pool,passcode,join_url,active\n"
CSV = {"content-type": "text/csv", **bearer(OPERATOR)}


def pool_file(prefix: str, pool: str = "47", count: int = 30) -> str:
    rows = [
        f"{prefix}{i:04d},300,{pool},pw{i},https://zoom.example/j/{prefix}{i:04d}?pwd=pw{i},"
        for i in range(count)
    ]
    return HEADER + "\n".join(rows) + "\n"


async def active_rooms(client: httpx.AsyncClient, pool: str) -> set[str]:
    answer = await client.get("/v1/admin/pools", params={"pool": pool}, headers=bearer(OPERATOR))
    return {r["meeting_id"] for r in answer.json()["items"] if r["active"]}


async def test_an_api_reload_and_vcs_pool_load_racing_apply_one_file_whole(
    start_services: StartServices, intake_url: str, tmp_path: Path
) -> None:
    await start_services("allocator", "intake")
    by_api, by_cli = pool_file("50000"), pool_file("60000")
    cli_file = tmp_path / "pool-47.csv"
    cli_file.write_text(by_cli, encoding="utf-8")
    env = {"VCS_API_URL": intake_url, "VCS_TOKEN": OPERATOR}

    async with httpx.AsyncClient(base_url=intake_url, timeout=60) as client:
        api, cli = await asyncio.gather(
            client.post("/v1/admin/pools/reload", content=by_api, headers=CSV),
            asyncio.to_thread(vcs, "pool", "load", str(cli_file), env=env),
        )
        assert api.status_code == 200, api.text
        assert cli.returncode == 0, cli.stdout + cli.stderr
        shown = await active_rooms(client, "47")

    api_rooms = {line.split(",")[0] for line in by_api.splitlines()[1:]}
    cli_rooms = {line.split(",")[0] for line in by_cli.splitlines()[1:]}
    assert shown in (api_rooms, cli_rooms)  # one file whole, never a mix
    assert api.json()["revision"] != 0


async def test_a_file_moving_a_meeting_id_between_pools_needs_moved_from(
    start_services: StartServices, intake_url: str
) -> None:
    await start_services("allocator", "intake")
    async with httpx.AsyncClient(base_url=intake_url, timeout=60) as client:
        sakon = (await active_rooms(client, "47")).pop()
        silently = HEADER + f"{sakon},300,48,pw,https://zoom.example/j/{sakon}?pwd=pw,\n"
        flagged = (
            HEADER.rstrip("\n")
            + ",moved_from\n"
            + f"{sakon},300,48,pw,https://zoom.example/j/{sakon}?pwd=pw,,47\n"
        )

        refused = await client.post("/v1/admin/pools/reload", content=silently, headers=CSV)
        still = await active_rooms(client, "47")
        moved = await client.post("/v1/admin/pools/reload", content=flagged, headers=CSV)

        assert refused.status_code == 409
        assert f"{sakon} (47 -> 48)" in refused.json()["detail"]
        assert "moved_from" in refused.json()["detail"]
        assert sakon in still
        assert moved.status_code == 200, moved.text
        assert moved.json()["moved"] == [sakon]
        assert sakon not in await active_rooms(client, "47")
        assert sakon in await active_rooms(client, "48")
