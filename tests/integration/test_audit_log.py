"""The audit log (issue 13): every operator action is one entry, read through the intake.

Each test performs one kind of action on the real services (through the pages, the API or
the ``vcs`` command, as people do) and finds exactly one entry for it in
``GET /v1/admin/audit``: who, what, when, on what, before and after. The log is scoped
like every admin list (a region-12 operator never sees province 10's entries, the national
role sees all), exports CSV, and no route changes or deletes an entry.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest

from tests.integration.test_pool_admin import NEW_POOL_47, vcs
from tests.integration.test_reassign import booked, free_rooms
from tests.support.audit import client_of, entries, exactly
from tests.support.auth import bearer, codec, office_token, operator_token
from tests.support.cli import last_line
from tests.support.cli import vcs as vcs_command
from tests.support.people import PASSWORD, csrf_field, sign_in, signed_in_client
from tests.support.requests import request_body, wait_status
from tests.support.services import StartServices
from vcs_shared.audit import Actor, AuditAction, AuditRecorded, Target
from vcs_shared.broker import ORIGINAL_ROUTING_KEY_HEADER, Topology
from vcs_shared.envelope import encode
from vcs_shared.thaitime import BANGKOK

pytestmark = pytest.mark.integration

REGION_12 = ("--operator", "--region", "12")


async def test_every_sign_in_is_audited_success_and_failure(
    start_services: StartServices,
    service_env: dict[str, str],
    intake_url: str,
    http: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    await start_services("desk", "intake")
    email = f"op-{uuid.uuid4().hex[:6]}@example.go.th"
    async with signed_in_client(service_env, tmp_path, intake_url, email=email, scope=REGION_12):
        pass
    async with httpx.AsyncClient(base_url=intake_url) as stranger:
        assert (await sign_in(stranger, email, "not " + PASSWORD)).status_code == 401
        assert (await sign_in(stranger, "nobody@example.go.th", PASSWORD)).status_code == 401

    failed, succeeded = await exactly(http, 2, target=email, action="sign_in")
    assert (succeeded["outcome"], succeeded["after"]) == ("success", "signed_in")
    assert (failed["outcome"], failed["after"]) == ("failure", "wrong_password")
    assert succeeded["actor"]["kind"] == "person"
    assert succeeded["actor"]["name"] == "ทดสอบ ระบบ"
    assert succeeded["provinces"] == ["38", "47", "48", "49"]  # the operator's region
    assert succeeded["source"] == "intake"
    [unknown] = await exactly(http, 1, target="nobody@example.go.th", action="sign_in")
    assert (unknown["outcome"], unknown["provinces"]) == ("failure", [])  # national's only
    async with client_of(intake_url, operator_token(region="12")) as region_12:
        assert len(await exactly(region_12, 2, target=email, action="sign_in")) == 2
        assert await entries(region_12, actor="nobody@example.go.th") == []
    async with client_of(intake_url, operator_token(region=None, provinces=("10",))) as bangkok:
        assert await entries(bangkok, action="sign_in") == []


async def test_an_invitation_is_audited_from_the_command_line_and_from_the_console(
    start_services: StartServices,
    service_env: dict[str, str],
    intake_url: str,
    http: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    await start_services("desk", "intake")
    operator_email = f"inviter-{uuid.uuid4().hex[:6]}@example.go.th"
    async with signed_in_client(
        service_env, tmp_path, intake_url, email=operator_email, scope=REGION_12
    ) as operator:
        [by_command] = await exactly(http, 1, target=operator_email, action="user_invite")
        form = await operator.get("/console/invite")
        clerk = f"clerk-{uuid.uuid4().hex[:6]}@example.go.th"
        invited = await operator.post(
            "/console/invite",
            data={
                "csrftoken": csrf_field(form.text),
                "name": "สมหญิง ใจงาม",
                "email": clerk,
                "kind": "office",
                "district": "4702",
            },
        )
        assert invited.status_code == 200
        [by_console] = await exactly(http, 1, target=clerk, action="user_invite")
        page = await operator.get("/console/audit", params={"action": "user_invite"})
        assert page.status_code == 200
        assert "การเชิญผู้ใช้" in page.text  # the action, in Thai
        assert clerk in page.text
        assert operator_email in page.text
        assert f" {datetime.now(BANGKOK).year + 543} " in page.text  # Buddhist-era dates
        assert 'href="/console/audit.csv?action=user_invite"' in page.text
        typed = await operator.get("/console/audit", params={"from": "1/1/2569"})
        assert clerk in typed.text  # a day typed the Thai way
        exported = await operator.get("/console/audit.csv", params={"action": "user_invite"})
        assert exported.status_code == 200
        assert exported.headers["content-type"].startswith("text/csv")
        assert "attachment" in exported.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(exported.text.lstrip("\ufeff"))))
        assert sorted(row["target_id"] for row in rows) == sorted([operator_email, clerk])

    assert by_command["actor"]["kind"] == "cli"
    assert by_command["actor"]["name"].endswith("(vcs user)")
    assert by_command["after"] is not None
    assert "region 12" in by_command["after"]
    assert by_console["actor"]["kind"] == "person"
    assert by_console["actor"]["name"] == "ทดสอบ ระบบ"
    assert by_console["after"] is not None
    assert by_console["after"].startswith(f"สมหญิง ใจงาม <{clerk}>, office 4702")
    assert by_console["provinces"] == ["47"]
    assert "/invite/" not in json.dumps(by_console)  # never the link

    resent = await vcs_command(
        "user",
        "invite",
        "--email",
        clerk,
        cwd=tmp_path,
        VCS_MONGODB_URL=service_env["VCS_MONGODB_URL"],
        VCS_NAMESPACE=service_env["VCS_NAMESPACE"],
    )
    assert "/invite/" in last_line(resent)
    assert len(await exactly(http, 2, target=clerk, action="user_invite")) == 2


async def test_a_pool_reload_is_audited_from_the_api_and_from_vcs_pool_load(
    start_services: StartServices, intake_url: str, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    await start_services("allocator", "desk", "intake")
    async with client_of(intake_url, operator_token("somsri", region="12")) as operator:
        reloaded = await operator.post(
            "/v1/admin/pools/reload", content=NEW_POOL_47, headers={"content-type": "text/csv"}
        )
        assert reloaded.status_code == 200, reloaded.text
        refused = await operator.post(
            "/v1/admin/pools/reload", content="not,a,pool\n", headers={"content-type": "text/csv"}
        )
        assert refused.status_code == 422  # changed nothing, recorded nothing
    [entry] = await exactly(http, 1, action="pool_reload")
    assert entry["actor"] == {"kind": "operator", "id": "operator:somsri", "name": "somsri"}
    assert entry["target"] == {"kind": "pool", "id": "47"}
    assert entry["before"] == "47: 12 active"
    assert entry["after"] == "1 loaded, 12 made inactive"
    assert entry["provinces"] == ["47"]
    assert entry["source"] == "allocator"

    pool_file = tmp_path / "pool.csv"
    pool_file.write_text(NEW_POOL_47, encoding="utf-8")
    env = {"VCS_API_URL": intake_url, "VCS_TOKEN": operator_token("sompong", region="12")}
    loaded = await asyncio.to_thread(vcs, "pool", "load", str(pool_file), env=env)
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    [again, first] = await exactly(http, 2, action="pool_reload")
    assert first["id"] == entry["id"]
    assert again["actor"]["id"] == "operator:sompong"
    assert again["before"] == "47: 1 active"


async def test_a_cancel_records_who_cancelled_a_token_or_a_signed_in_person(
    start_services: StartServices,
    service_env: dict[str, str],
    intake_url: str,
    http: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    await start_services("allocator", "desk", "intake")
    by_office = (await http.post("/v1/requests", json=request_body("4701"))).json()["request_id"]
    by_person = (await http.post("/v1/requests", json=request_body("4702"))).json()["request_id"]
    await wait_status(http, by_office, "delivered", "assigned")
    await wait_status(http, by_person, "delivered", "assigned")

    async with client_of(intake_url, office_token("4701")) as office:
        assert (await office.post(f"/v1/requests/{by_office}/cancel")).status_code == 200
        assert (await office.post(f"/v1/requests/{by_office}/cancel")).status_code == 200
    async with signed_in_client(
        service_env, tmp_path, intake_url, email="canceller@example.go.th", scope=REGION_12
    ) as operator:
        page = await operator.get(f"/console/requests/{by_person}")
        cancelled = await operator.post(
            f"/console/requests/{by_person}/cancel", data={"csrftoken": csrf_field(page.text)}
        )
        assert cancelled.status_code == 303

    [office_entry] = await exactly(http, 1, target=by_office, action="request_cancel")
    [person_entry] = await exactly(http, 1, target=by_person, action="request_cancel")
    assert office_entry["actor"] == {"kind": "office", "id": "office:4701", "name": "4701"}
    assert (office_entry["before"], office_entry["after"]) in {
        ("delivered", "cancelled"),
        ("assigned", "cancelled"),
    }
    assert office_entry["provinces"] == ["47"]
    assert person_entry["actor"]["kind"] == "person"
    assert person_entry["actor"]["name"] == "ทดสอบ ระบบ"
    assert person_entry["target"] == {"kind": "request", "id": by_person}
    assert await exactly(http, 2, action="request_cancel")  # the second cancel added nothing


async def test_token_issue_and_revoke_on_the_command_line_are_audited(
    start_services: StartServices,
    service_env: dict[str, str],
    http: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    await start_services("desk", "intake")
    settings = {
        "VCS_JWT_SECRET": service_env["VCS_JWT_SECRET"],
        "VCS_MONGODB_URL": service_env["VCS_MONGODB_URL"],
        "VCS_NAMESPACE": service_env["VCS_NAMESPACE"],
    }
    issued = await vcs_command(
        "token", "issue", "--operator", "somchai", "--region", "12", cwd=tmp_path, **settings
    )
    token = last_line(issued)
    jti = codec.claims(token).jti
    revoked = await vcs_command("token", "revoke", token, cwd=tmp_path, **settings)
    assert revoked.returncode == 0, revoked.stderr
    again = await vcs_command("token", "revoke", jti, cwd=tmp_path, **settings)
    assert "already revoked" in again.stdout

    [issue] = await exactly(http, 1, target=jti, action="token_issue")
    [revoke] = await exactly(http, 1, target=jti, action="token_revoke")
    assert issue["actor"]["kind"] == "cli"
    assert issue["actor"]["name"].endswith("(vcs token issue)")
    assert issue["after"] is not None
    assert issue["after"].startswith("operator:somchai, expires ")
    assert issue["provinces"] == ["38", "47", "48", "49"]
    assert (revoke["before"], revoke["after"]) == ("operator:somchai, valid", "revoked")
    assert revoke["source"] == "vcs-token"


async def test_a_dead_letter_replay_is_audited(
    start_services: StartServices,
    intake_url: str,
    http: httpx.AsyncClient,
    broker: Any,
    topology: Topology,
) -> None:
    await start_services("desk", "intake")
    channel = broker
    dead = await channel.get_exchange(topology.dead_exchange)
    await dead.publish(
        aio_pika.Message(
            b"not json",
            message_id="poison-1",
            headers={ORIGINAL_ROUTING_KEY_HEADER: "request.submitted.47.4701"},
        ),
        routing_key=topology.queue("allocator"),
    )
    async with client_of(intake_url, operator_token("somsri", region="12")) as operator:
        replayed = await operator.post(
            "/v1/admin/dead-letters/replay",
            json={"service": "allocator", "message_id": "poison-1", "include_poison": True},
        )
        assert replayed.status_code == 200, replayed.text
        assert replayed.json()[0]["replayed"] == ["poison-1"]
        [entry] = await exactly(operator, 1, action="dead_letter_replay")
    assert entry["actor"]["id"] == "operator:somsri"
    assert entry["target"] == {"kind": "dead_letter", "id": "poison-1"}
    assert entry["after"] == "replayed 1: allocator:poison-1"
    assert entry["detail"] == "poison left: 0, poison included"
    assert entry["source"] == "desk"


async def test_a_reassign_is_audited(
    start_services: StartServices, intake_url: str, http: httpx.AsyncClient
) -> None:
    await start_services("allocator", "notifier", "desk", "intake")
    request = await booked(http, "4701")
    old = request["assignment"]["meeting_id"]
    target = next(r["meeting_id"] for r in await free_rooms(http, request) if r["pool"] == "47")
    async with client_of(intake_url, operator_token("somsri", region="12")) as operator:
        moved = await operator.post(
            f"/v1/admin/requests/{request['request_id']}/reassign", json={"meeting_id": target}
        )
        assert moved.status_code == 200, moved.text
        taken = await operator.post(
            f"/v1/admin/requests/{request['request_id']}/reassign", json={"meeting_id": "123"}
        )
        assert taken.status_code == 422  # refused: nothing moved, nothing recorded
    [entry] = await exactly(http, 1, target=request["request_id"], action="room_reassign")
    assert entry["actor"]["id"] == "operator:somsri"
    assert entry["before"] == f"room {old}"
    assert entry["after"] == f"room {target}"
    assert (entry["provinces"], entry["source"]) == (["47"], "allocator")


async def test_a_redelivery_is_audited(
    start_services: StartServices, intake_url: str, http: httpx.AsyncClient
) -> None:
    await start_services("allocator", "notifier", "desk", "intake")
    request = await booked(http, "4701")
    async with client_of(intake_url, operator_token("somsri", region="12")) as operator:
        sent = await operator.post(f"/v1/admin/requests/{request['request_id']}/redeliver")
        assert sent.status_code == 200, sent.text
    [entry] = await exactly(http, 1, target=request["request_id"], action="credentials_redeliver")
    assert entry["actor"]["id"] == "operator:somsri"
    assert (entry["outcome"], entry["after"]) == ("success", "credentials sent again")
    assert (entry["provinces"], entry["source"]) == (["47"], "notifier")


async def test_a_support_claim_and_done_are_audited(
    start_services: StartServices, intake_url: str, http: httpx.AsyncClient
) -> None:
    await start_services("desk", "intake")
    async with client_of(intake_url, office_token("4701")) as office:
        asked = await office.post(
            "/v1/support-requests",
            json={
                "topic": "ตั้งค่าไมโครโฟน",
                "contact": {"name": "สมหญิง", "email": "s@example.go.th", "phone": "042-711361"},
            },
            headers={"Idempotency-Key": "help-1"},
        )
        assert asked.status_code == 201, asked.text
    ticket = asked.json()["ticket_id"]
    async with client_of(intake_url, operator_token("somsri", region="12")) as operator:
        claimed = await operator.post(
            f"/v1/admin/support/{ticket}/claim",
            json={"helper": "นายช่าง ใจดี", "visit_at": "2026-12-03T08:30:00+07:00"},
        )
        assert claimed.status_code == 200, claimed.text
        again = await operator.post(
            f"/v1/admin/support/{ticket}/claim",
            json={"helper": "อีกคน", "visit_at": "2026-12-03T08:30:00+07:00"},
        )
        assert again.status_code == 409  # refused: recorded nothing
        done = await operator.post(f"/v1/admin/support/{ticket}/done", json={"note": "เสร็จแล้ว"})
        assert done.status_code == 200, done.text
    [claim] = await exactly(http, 1, target=ticket, action="support_claim")
    [finished] = await exactly(http, 1, target=ticket, action="support_done")
    assert claim["actor"]["id"] == finished["actor"]["id"] == "operator:somsri"
    assert (claim["before"], claim["after"]) == (
        "open",
        "claimed: นายช่าง ใจดี will help, 2026-12-03 08:30",
    )
    assert (finished["before"], finished["after"]) == ("claimed by นายช่าง ใจดี", "done: เสร็จแล้ว")
    assert (claim["provinces"], claim["source"]) == (["47"], "desk")


async def test_the_log_is_scoped_filtered_paginated_exported_and_append_only(
    start_services: StartServices,
    intake_url: str,
    http: httpx.AsyncClient,
    broker: Any,
    topology: Topology,
) -> None:
    """Entries published on the audit exchange the way the services do (one twice, as an
    outbox retry would) for province 47 and province 10."""
    await start_services("desk", "intake")
    channel = broker
    audit = await channel.get_exchange(topology.audit_exchange)

    def entry(province: str, actor: str, minute: int) -> AuditRecorded:
        return AuditRecorded(
            actor=Actor(kind="operator", id=f"operator:{actor}", name=actor),
            action=AuditAction.pool_reload,
            target=Target(kind="pool", id=province),
            provinces=(province,),
            before="=1+1",  # a formula, to a spreadsheet
            after="1 loaded",
            at=datetime(2026, 12, 3, 9, minute, tzinfo=BANGKOK),
        )

    published = [entry("47", "somsri", 1), entry("47", "somchai", 2), entry("10", "bkk", 3)]
    for one in [*published, published[0]]:
        message = encode(one, source="allocator")
        for _ in range(2 if one is published[0] else 1):
            await audit.publish(
                aio_pika.Message(message.body.encode(), message_id=message.id),
                routing_key=message.routing_key,
            )
    everything = await exactly(http, 4, action="pool_reload")  # 4 ids, one sent twice
    assert [e["actor"]["name"] for e in everything] == ["bkk", "somchai", "somsri", "somsri"]

    async with client_of(intake_url, operator_token(region="12")) as region_12:
        mine = await entries(region_12)
        assert [e["actor"]["name"] for e in mine] == ["somchai", "somsri", "somsri"]
        assert await entries(region_12, actor="bkk") == []
        assert [e["actor"]["name"] for e in await entries(region_12, actor="somchai")] == [
            "somchai"
        ]
        window = await entries(region_12, **{"from": "2026-12-03T09:02:00+07:00"})
        assert [e["actor"]["name"] for e in window] == ["somchai"]
        assert await entries(region_12, to="2026-12-02") == []
        assert len(await entries(region_12, **{"from": "2026-12-03", "to": "2026-12-03"})) == 3
        bad = await region_12.get("/v1/admin/audit", params={"from": "yesterday"})
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["query", "from"]

        first = (await region_12.get("/v1/admin/audit", params={"limit": "2"})).json()
        second = (
            await region_12.get("/v1/admin/audit", params={"limit": "2", "cursor": first["next"]})
        ).json()
        assert len(first["items"]) == 2
        assert [e["id"] for e in second["items"]] == [mine[2]["id"]]
        assert second["next"] is None

        for path in ("/v1/admin/audit?format=csv", "/v1/admin/audit.csv"):
            exported = await region_12.get(path)
            assert exported.status_code == 200
            assert exported.headers["content-type"].startswith("text/csv")
            rows = list(csv.DictReader(io.StringIO(exported.text.lstrip("\ufeff"))))
            assert [row["actor_name"] for row in rows] == ["somchai", "somsri", "somsri"]
            assert rows[0]["before"] == "'=1+1"
            assert rows[0]["at"] == "2026-12-03T09:02:00+07:00"

        as_office = await region_12.get("/v1/admin/audit", headers=bearer(office_token("4701")))
        assert as_office.status_code == 403
        assert (
            await region_12.get("/v1/admin/audit", headers={"Authorization": ""})
        ).status_code == 401

        entry_id = mine[0]["id"]
        for method in ("PUT", "PATCH", "DELETE", "POST"):
            for path in ("/v1/admin/audit", f"/v1/admin/audit/{entry_id}"):
                answer = await region_12.request(method, path, json={"after": "forged"})
                assert answer.status_code in (404, 405), (method, path, answer.status_code)
            assert (await region_12.request(method, "/v1/admin/audit")).status_code == 405
    assert len(await exactly(http, 4, action="pool_reload")) == 4  # nothing changed or gone
