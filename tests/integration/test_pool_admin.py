"""Pools managed without a restart: the admin API on the intake's address (forwarded to the
allocator's internal API) and ``vcs pool``, which calls the same API."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from tests.integration.test_allocator_concurrency import (
    START,
    all_decided,
    outcomes,
    publish,
    submitted,
)
from tests.support.auth import TEST_JWT_SECRET, bearer, codec, office_token, operator_token
from tests.support.paths import SAMPLE_POOL
from tests.support.services import StartServices
from tests.support.tap import EventTap
from vcs_allocator.pool import load_pool_file
from vcs_shared.broker import Topology
from vcs_shared.store import Document, database_name
from vcs_shared.thaitime import BANGKOK
from vcs_tools.devstack import free_port

pytestmark = pytest.mark.integration


NEW_ROOM = "98765432101"
HEADER = "meeting_id,capacity,pool,passcode,join_url,active\n"
NEW_POOL_47 = HEADER + f"{NEW_ROOM},300,47,s3cret,https://zoom.example/j/{NEW_ROOM}?pwd=s3cret,\n"
BAD_POOL = HEADER + (
    f"{NEW_ROOM},300,47,s3cret,https://zoom.example/j/{NEW_ROOM},true\n"
    "12345,300,47,x,https://zoom.example/j/12345,true\n"
    "123456789,250,47,x,https://zoom.example/j/123456789,true\n"
)


async def admin_client(start_services: StartServices, intake_url: str) -> httpx.AsyncClient:
    """A region-12 operator's client of the intake, with the allocator behind it."""
    await start_services("allocator", "intake")
    return httpx.AsyncClient(
        base_url=intake_url,
        headers={"Authorization": f"Bearer {operator_token()}"},
        timeout=30,
    )


def rooms_by_pool(listing: httpx.Response) -> dict[str, list[dict[str, Any]]]:
    assert listing.status_code == 200, listing.text
    by_pool: dict[str, list[dict[str, Any]]] = {}
    for item in listing.json()["items"]:
        by_pool.setdefault(item["pool"], []).append(item)
    return by_pool


async def test_the_pools_api_is_on_the_intakes_address_and_needs_an_operator(
    start_services: StartServices, intake_url: str, service_env: dict[str, str]
) -> None:
    client = await admin_client(start_services, intake_url)
    async with client:
        anonymous = await client.get("/v1/admin/pools", headers={"Authorization": ""})
        office = await client.get("/v1/admin/pools", headers=bearer(office_token("4701")))
        operator = await client.get("/v1/admin/pools")

    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert office.status_code == 403
    assert operator.status_code == 200
    [item] = operator.json()["items"][:1]
    assert set(item) == {"meeting_id", "capacity", "pool", "active"}

    internal = service_env["VCS_ALLOCATOR_URL"]  # the allocator's own port: internal tokens only
    async with httpx.AsyncClient(base_url=internal, timeout=30) as direct:
        with_user_token = await direct.get("/v1/admin/pools", headers=bearer(operator_token()))
        principal = codec.verify(operator_token())
        with_internal = await direct.get(
            "/v1/admin/pools", headers=bearer(codec.internal_token(principal))
        )
    assert with_user_token.status_code == 401
    assert "internal" in with_user_token.json()["detail"]
    assert with_internal.status_code == 200


async def test_the_admin_api_lists_reloads_and_shows_reservations_without_a_restart(
    start_services: StartServices,
    tap: EventTap,
    amqp_url: str,
    topology: Topology,
    intake_url: str,
) -> None:
    async with await admin_client(start_services, intake_url) as admin:
        pools = rooms_by_pool(await admin.get("/v1/admin/pools"))
        sample = load_pool_file(SAMPLE_POOL)
        assert {pool: len(rooms) for pool, rooms in pools.items()} == {
            pool: sum(r.pool == pool for r in sample) for pool in {r.pool for r in sample}
        }
        shown = (await admin.get("/v1/admin/pools")).text
        assert "pwd=" not in shown
        assert not any(r.passcode in shown for r in sample)

        bad = await admin.post(
            "/v1/admin/pools/reload", content=BAD_POOL, headers={"content-type": "text/csv"}
        )
        assert bad.status_code == 422
        assert [(d["line"], d["field"]) for d in bad.json()["detail"]] == [
            (3, "meeting_id"),
            (4, "capacity"),
        ]
        unchanged = rooms_by_pool(await admin.get("/v1/admin/pools", params={"province": "47"}))
        assert NEW_ROOM not in {r["meeting_id"] for r in unchanged["47"]}

        wrong_type = await admin.post(
            "/v1/admin/pools/reload", content=NEW_POOL_47, headers={"content-type": "text/plain"}
        )
        assert wrong_type.status_code == 415

        reloaded = await admin.post(
            "/v1/admin/pools/reload", content=NEW_POOL_47, headers={"content-type": "text/csv"}
        )
        assert reloaded.status_code == 200
        province_rooms = sum(r.pool == "47" and r.active for r in sample)
        assert reloaded.json() == {
            "pools": ["47"],
            "loaded": 1,
            "deactivated": province_rooms,
            "moved": [],
            "revision": 2,  # the sample's load at start was the first
        }

        event = submitted("4703", participants=250)
        await publish(amqp_url, topology, [event])
        await all_decided(tap, {event.request_id}, timeout=30)
        assert outcomes(tap)[event.request_id] == {("assigned", NEW_ROOM)}

        day = START.astimezone(BANGKOK).date().isoformat()
        listed = await admin.get(
            "/v1/admin/reservations", params={"meeting_id": NEW_ROOM, "date": day}
        )
        assert listed.status_code == 200
        [reservation] = listed.json()
        assert reservation["request_id"] == event.request_id
        assert reservation["district_code"] == "4703"
        assert reservation["capacity"] == 300
        other_day = (START - timedelta(days=7)).astimezone(BANGKOK).date()
        elsewhere = await admin.get(
            "/v1/admin/reservations", params={"meeting_id": NEW_ROOM, "date": str(other_day)}
        )
        assert elsewhere.json() == []


async def test_a_yaml_reload_through_the_admin_api(
    start_services: StartServices, intake_url: str
) -> None:
    yaml_pool = (
        f"- meeting_id: '{NEW_ROOM}'\n"
        "  capacity: 1000\n"
        "  pool: region-12\n"
        "  passcode: s3cret\n"
        f"  join_url: https://zoom.example/j/{NEW_ROOM}\n"
        "- meeting_id: '123'\n"
        "  capacity: 300\n"
    )
    async with await admin_client(start_services, intake_url) as admin:
        bad = await admin.post(
            "/v1/admin/pools/reload",
            content=yaml_pool,
            headers={"content-type": "application/yaml"},
        )
        assert bad.status_code == 422
        assert {(d["line"], d["field"]) for d in bad.json()["detail"]} == {
            (6, "meeting_id"),
            (6, "pool"),
            (6, "passcode"),
            (6, "join_url"),
        }

        good = await admin.post(
            "/v1/admin/pools/reload",
            content=yaml_pool.split("- meeting_id: '123'")[0],
            headers={"content-type": "application/yaml"},
        )
        assert good.status_code == 200
        overflow = rooms_by_pool(await admin.get("/v1/admin/pools", params={"pool": "region-12"}))
        [active] = [r for r in overflow["region-12"] if r["active"]]
        assert active["meeting_id"] == NEW_ROOM


def vcs(
    *args: str, env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """The real ``vcs`` command, as an operator runs it (no VCS_* setting leaks in)."""
    executable = Path(sys.executable).with_name("vcs")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VCS_")}
    return subprocess.run(
        [str(executable), *args],
        env={**clean, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_vcs_pool_load_checks_the_whole_file_first_and_show_lists_the_rooms(
    start_services: StartServices,
    intake_url: str,
    namespace: str,
    mongo: AsyncMongoClient[Document],
    tmp_path: Path,
) -> None:
    await start_services("allocator", "intake")
    env = {"VCS_API_URL": intake_url, "VCS_TOKEN": operator_token("somsri", region="12")}
    rooms = mongo[database_name(namespace, "allocator")]["rooms"]
    sample = load_pool_file(SAMPLE_POOL)
    bad_file = tmp_path / "bad.csv"
    bad_file.write_text(BAD_POOL, encoding="utf-8")

    bad = await asyncio.to_thread(vcs, "pool", "load", str(bad_file), env=env)
    assert bad.returncode == 1
    assert "line 3: meeting_id:" in bad.stdout
    assert "line 4: capacity:" in bad.stdout
    assert await rooms.count_documents({}) == len(sample)  # the sample, loaded at start
    assert await rooms.count_documents({"meeting_id": NEW_ROOM}) == 0

    good_file = tmp_path / f"{uuid.uuid4().hex}.csv"
    good_file.write_text(NEW_POOL_47, encoding="utf-8")
    replaced = await asyncio.to_thread(vcs, "pool", "load", str(good_file), env=env)
    assert replaced.returncode == 0, replaced.stdout + replaced.stderr
    assert "12 no longer listed became inactive" in replaced.stdout

    shown = await asyncio.to_thread(vcs, "pool", "show", "--pool", "47", env=env)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert shown.stdout.startswith("pool 47: 1 active (1 x 300)")
    assert NEW_ROOM in shown.stdout
    assert "s3cret" not in shown.stdout
    assert await rooms.count_documents({"pool": "48", "active": True}) > 0  # other pools kept


async def test_the_operators_commands_work_beside_make_run_and_say_what_they_need(
    start_services: StartServices, intake_url: str, tmp_path: Path
) -> None:
    """What ``make run`` writes (.data/dev.env) is enough: no token, no store or broker URL."""
    await start_services("allocator", "desk", "intake")
    (tmp_path / ".data").mkdir()
    (tmp_path / ".data" / "dev.env").write_text(f"VCS_JWT_SECRET={TEST_JWT_SECRET}\n")
    beside_make_run = {"VCS_API_URL": intake_url}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return vcs(*args, env=beside_make_run, cwd=tmp_path)

    shown, loaded, listed, replayed = await asyncio.gather(
        asyncio.to_thread(run, "pool", "show", "--pool", "47"),
        asyncio.to_thread(run, "pool", "load", str(SAMPLE_POOL)),
        asyncio.to_thread(run, "dlq", "list"),
        asyncio.to_thread(run, "dlq", "replay", "--all"),
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    no_token = await asyncio.to_thread(vcs, "pool", "show", env={}, cwd=elsewhere)
    unreachable = await asyncio.to_thread(
        vcs, "dlq", "list", env={"VCS_API_URL": f"http://127.0.0.1:{free_port()}"}, cwd=tmp_path
    )

    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert shown.stdout.startswith("pool 47: 12 active")
    assert "national operator" in shown.stderr
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    assert (listed.returncode, listed.stdout) == (
        0,
        "no dead letters (allocator, notifier, intake, desk)\n",
    )
    assert (replayed.returncode, replayed.stdout) == (1, "nothing replayed\n")
    assert no_token.returncode == unreachable.returncode == 2
    assert "VCS_TOKEN" in no_token.stdout
    assert "VCS_API_URL" in unreachable.stdout
    commands = [("pool", "load"), ("pool", "show"), ("dlq", "list"), ("dlq", "replay")]
    for command in commands:
        helped = await asyncio.to_thread(vcs, *command, "--help", env={})
        assert helped.returncode == 0
        for setting in ("VCS_API_URL", "VCS_TOKEN", "VCS_JWT_SECRET", ".data/dev.env"):
            assert setting in " ".join(helped.stdout.split()), (command, setting)
