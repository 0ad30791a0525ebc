"""Bad input gets a 422 naming the field and why, and nothing is stored for it; a retried
submit with the same Idempotency-Key never makes a second request, even when retries race.

The intake runs as its own process against the real broker and store.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from tests.support.requests import request_body, tomorrow_at
from tests.support.services import StartServices
from vcs_shared.store import Document, database_name

pytestmark = pytest.mark.integration

MAX_BODY = 64 * 1024  # IntakeSettings.max_body_bytes default


def _without(field: str) -> dict[str, Any]:
    body = request_body()
    del body[field]
    return body


BAD_BODIES: list[tuple[str, dict[str, Any], list[Any], str]] = [
    ("missing starts_at", _without("starts_at"), ["body", "starts_at"], "missing"),
    ("not a DOPA code", request_body("4799"), ["body", "district_code"], "DOPA district code"),
    ("letters as code", request_body("abcd"), ["body", "district_code"], "DOPA district code"),
    ("zero participants", request_body(participants=0), ["body", "participants"], "greater than"),
    ("negative participants", request_body(participants=-3), ["body", "participants"], "greater"),
    (
        "participants not an integer",
        {**request_body(), "participants": "many"},
        ["body", "participants"],
        "integer",
    ),
    (
        "participants a float",
        {**request_body(), "participants": 2.5},
        ["body", "participants"],
        "integer",
    ),
    (
        "ends before it starts",
        request_body(
            starts_at=tomorrow_at(11),
            ends_at=tomorrow_at(9).isoformat(),
        ),
        ["body", "ends_at"],
        "after starts_at",
    ),
    ("unknown urgency", request_body(urgency="whenever"), ["body", "urgency"], "normal"),
]


@pytest.fixture
async def intake(start_services: StartServices) -> None:
    await start_services("intake")


@pytest.fixture
def requests_count(mongo: AsyncMongoClient[Document], namespace: str) -> Any:
    """Counts the intake's stored requests: what a rejected body must not have added to."""
    collection = mongo[database_name(namespace, "intake")]["requests"]

    async def count(query: Document | None = None) -> int:
        return await collection.count_documents(query or {})

    return count


def _error_for(response: httpx.Response, loc: list[Any]) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    errors: list[dict[str, Any]] = response.json()["detail"]
    matching = [e for e in errors if list(e["loc"]) == loc]
    assert matching, f"no error at {loc}: {errors}"
    return matching[0]


@pytest.mark.usefixtures("intake")
async def test_each_invalid_field_or_body_is_named_with_why_and_nothing_is_stored(
    http: httpx.AsyncClient, requests_count: Any
) -> None:
    for label, body, loc, why in BAD_BODIES:
        response = await http.post("/v1/requests", json=body)
        error = _error_for(response, loc)
        text = f"{error['msg']} {error['type']}"
        assert why in text, f"{label}: {error}"

    headers = {"Content-Type": "application/json"}
    malformed = await http.post(
        "/v1/requests", content=b'{"district_code": "4701",', headers=headers
    )
    assert malformed.status_code == 422
    [error] = malformed.json()["detail"]
    assert error["loc"][0] == "body"
    assert error["type"] == "json_invalid"

    padded = request_body(title="ก" * MAX_BODY)
    oversized = await http.post("/v1/requests", json=padded)
    assert _error_for(oversized, ["body"])["type"] == "body_too_large"

    async def chunks() -> AsyncIterator[bytes]:
        payload = json.dumps(padded).encode()
        for start in range(0, len(payload), 8192):
            yield payload[start : start + 8192]

    chunked = await http.post("/v1/requests", content=chunks(), headers=headers)
    assert "content-length" not in chunked.request.headers
    assert chunked.request.headers["transfer-encoding"] == "chunked"
    assert _error_for(chunked, ["body"])["type"] == "body_too_large"

    assert await requests_count() == 0
    fine = await http.post("/v1/requests", json=request_body())
    assert fine.status_code == 202
    assert await requests_count() == 1


@pytest.mark.usefixtures("intake")
async def test_racing_retries_with_one_key_get_one_request_and_a_different_body_is_refused(
    http: httpx.AsyncClient, requests_count: Any
) -> None:
    body = request_body(participants=120)
    headers = {"Idempotency-Key": "retry-4701-0001"}

    responses = await asyncio.gather(
        *(http.post("/v1/requests", json=body, headers=headers) for _ in range(8))
    )

    assert sorted(r.status_code for r in responses) == [200] * 7 + [202]
    assert len({r.json()["request_id"] for r in responses}) == 1
    assert await requests_count() == 1

    later = await http.post("/v1/requests", json=body, headers=headers)
    assert later.status_code == 200
    assert later.json()["request_id"] == responses[0].json()["request_id"]

    changed = await http.post("/v1/requests", json=request_body(participants=121), headers=headers)
    error = _error_for(changed, ["header", "Idempotency-Key"])
    assert "different request" in error["msg"]
    assert await requests_count() == 1

    other_key = await http.post(
        "/v1/requests", json=body, headers={"Idempotency-Key": "retry-4701-0002"}
    )
    assert other_key.status_code == 202
    assert await requests_count() == 2
