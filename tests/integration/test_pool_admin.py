"""Pools managed without a restart: the allocator's admin API and ``vcs pool``."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

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
from tests.support.auth import bearer, office_token, operator_token
from tests.support.paths import SAMPLE_POOL
from tests.support.services import StartServices
from tests.support.tap import EventTap
from vcs_allocator.pool import load_pool_file
from vcs_allocator.store import MongoReservationStore
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


async def admin_client(start_services: StartServices) -> httpx.AsyncClient:
    port = free_port()
    await start_services("allocator", extra_env={"VCS_ADMIN_PORT": str(port)})
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {operator_token()}"},
        timeout=30,
    )


async def test_the_allocator_admin_api_needs_an_operator(start_services: StartServices) -> None:
    client = await admin_client(start_services)
    async with client:
        anonymous = await client.get("/v1/admin/pools", headers={"Authorization": ""})
        office = await client.get("/v1/admin/pools", headers=bearer(office_token("4701")))
        operator = await client.get("/v1/admin/pools")

    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert office.status_code == 403
    assert operator.status_code == 200


async def test_the_admin_api_lists_reloads_and_shows_reservations_without_a_restart(
    start_services: StartServices, tap: EventTap, amqp_url: str, topology: Topology
) -> None:
    async with await admin_client(start_services) as admin:
        pools = (await admin.get("/v1/admin/pools")).json()["pools"]
        sample = load_pool_file(SAMPLE_POOL)
        assert {p["pool"]: len(p["rooms"]) for p in pools} == {
            pool: sum(r.pool == pool for r in sample) for pool in {r.pool for r in sample}
        }
        assert "pwd=" not in (await admin.get("/v1/admin/pools")).text

        bad = await admin.post(
            "/v1/admin/pools/reload", content=BAD_POOL, headers={"content-type": "text/csv"}
        )
        assert bad.status_code == 422
        assert [(d["line"], d["field"]) for d in bad.json()["detail"]] == [
            (3, "meeting_id"),
            (4, "capacity"),
        ]
        unchanged = (await admin.get("/v1/admin/pools", params={"pool": "47"})).json()["pools"]
        assert NEW_ROOM not in {r["meeting_id"] for r in unchanged[0]["rooms"]}

        wrong_type = await admin.post(
            "/v1/admin/pools/reload", content=NEW_POOL_47, headers={"content-type": "text/plain"}
        )
        assert wrong_type.status_code == 415

        reloaded = await admin.post(
            "/v1/admin/pools/reload", content=NEW_POOL_47, headers={"content-type": "text/csv"}
        )
        assert reloaded.status_code == 200
        province_rooms = sum(r.pool == "47" and r.active for r in sample)
        assert reloaded.json() == {"pools": ["47"], "loaded": 1, "deactivated": province_rooms}

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


async def test_a_yaml_reload_through_the_admin_api(start_services: StartServices) -> None:
    yaml_pool = (
        f"- meeting_id: '{NEW_ROOM}'\n"
        "  capacity: 1000\n"
        "  pool: region-12\n"
        "  passcode: s3cret\n"
        f"  join_url: https://zoom.example/j/{NEW_ROOM}\n"
        "- meeting_id: '123'\n"
        "  capacity: 300\n"
    )
    async with await admin_client(start_services) as admin:
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
        overflow = (await admin.get("/v1/admin/pools", params={"pool": "region-12"})).json()
        [active] = [r for r in overflow["pools"][0]["rooms"] if r["active"]]
        assert active["meeting_id"] == NEW_ROOM


def vcs(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The real ``vcs`` command, as an operator runs it."""
    executable = Path(sys.executable).with_name("vcs")
    return subprocess.run(
        [str(executable), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_vcs_pool_load_checks_the_whole_file_first_and_show_lists_the_rooms(
    mongodb_url: str, namespace: str, mongo: AsyncMongoClient[Document], tmp_path: Path
) -> None:
    env = {"VCS_MONGODB_URL": mongodb_url, "VCS_NAMESPACE": namespace}
    rooms = mongo[database_name(namespace, "allocator")]["rooms"]
    bad_file = tmp_path / "bad.csv"
    bad_file.write_text(BAD_POOL, encoding="utf-8")

    bad = await asyncio.to_thread(vcs, "pool", "load", str(bad_file), env=env)
    assert bad.returncode == 1
    assert "line 3: meeting_id:" in bad.stdout
    assert "line 4: capacity:" in bad.stdout
    assert await rooms.count_documents({}) == 0

    store = MongoReservationStore(mongo[database_name(namespace, "allocator")])
    await store.replace_rooms(load_pool_file(SAMPLE_POOL))

    good_file = tmp_path / f"{uuid.uuid4().hex}.csv"
    good_file.write_text(NEW_POOL_47, encoding="utf-8")
    replaced = await asyncio.to_thread(vcs, "pool", "load", str(good_file), env=env)
    assert replaced.returncode == 0, replaced.stdout + replaced.stderr
    assert "12 no longer listed became inactive" in replaced.stdout

    shown = await asyncio.to_thread(vcs, "pool", "show", "--pool", "47", env=env)
    assert shown.returncode == 0
    assert shown.stdout.startswith("pool 47: 1 active (1 x 300)")
    assert NEW_ROOM in shown.stdout
    assert "s3cret" not in shown.stdout
    assert await rooms.count_documents({"pool": "48", "active": True}) > 0  # other pools kept
