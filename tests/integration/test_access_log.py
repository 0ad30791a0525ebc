"""Every HTTP request is logged once, with its ``http_request_id``, and the front door's id
reaches the owner it forwards to (issue 16, Logs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.auth import bearer, office_token, operator_token
from tests.support.requests import request_body
from tests.support.services import StartServices
from tests.support.waiting import eventually
from vcs_tools.devstack import ServiceProcess

pytestmark = pytest.mark.integration


def access_lines(process: ServiceProcess) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in Path(process.log_path).read_text().splitlines() if line]
    return [line for line in lines if line.get("event") == "http.request"]


async def logged(process: ServiceProcess, request_id: str) -> list[dict[str, Any]]:
    async def found() -> list[dict[str, Any]] | None:
        lines = [x for x in access_lines(process) if x.get("http_request_id") == request_id]
        return lines or None

    return await eventually(found, what=f"the log line of {request_id} in {process.name}")


async def test_each_request_is_one_line_with_its_id_status_duration_and_caller(
    start_services: StartServices, intake_url: str
) -> None:
    (intake,) = await start_services("intake")
    token = office_token("4701")
    async with httpx.AsyncClient(base_url=intake_url, timeout=30) as client:
        accepted = await client.post(
            "/v1/requests",
            json=request_body("4701"),
            headers={**bearer(token), "Idempotency-Key": "log-1", "X-Request-ID": "from-client-1"},
        )
        refused = await client.get("/v1/requests/nope", headers={"Authorization": "Bearer junk"})
        invalid = await client.post("/v1/requests", json={"title": ""}, headers=bearer(token))

    assert accepted.status_code == 202
    assert accepted.headers["x-request-id"] == "from-client-1"  # the caller's id is kept
    assert (refused.status_code, invalid.status_code) == (401, 422)
    expected = [
        (accepted, "POST", "/v1/requests", "office:4701"),
        (refused, "GET", "/v1/requests/nope", None),
        (invalid, "POST", "/v1/requests", "office:4701"),
    ]
    for answer, method, path, principal in expected:
        (line,) = await logged(intake, answer.headers["x-request-id"])  # once, not twice
        assert (line["method"], line["path"], line["status"]) == (method, path, answer.status_code)
        assert line["principal"] == principal
        assert line["duration_ms"] >= 0
        assert "junk" not in json.dumps(line)
        assert token not in json.dumps(line)
    ids = {answer.headers["x-request-id"] for answer, *_ in expected}
    assert len(ids) == 3  # a new id for each request that brought none


async def test_a_forwarded_request_is_logged_by_the_owner_under_the_same_id(
    start_services: StartServices, intake_url: str
) -> None:
    intake, allocator = await start_services("intake", "allocator")
    async with httpx.AsyncClient(base_url=intake_url, timeout=30) as client:
        answer = await client.get(
            "/v1/admin/pools", headers=bearer(operator_token("somsri", region="12"))
        )
    assert answer.status_code == 200
    request_id = answer.headers["x-request-id"]
    (at_front,) = await logged(intake, request_id)
    (at_owner,) = await logged(allocator, request_id)
    assert at_front["principal"] == "operator:somsri"
    assert at_owner["principal"] == "operator:somsri"  # the internal token's identity
    assert at_owner["path"] == "/v1/admin/pools"
    assert at_owner["status"] == 200
