"""Inputs that gave a 500 (issue 11, point 3) get a clear 4xx or a clear state instead: a
request whose credentials were sealed with a key since rotated out, a pool file nested deeper
than the YAML parser recurses, a day at the end of the calendar.

The intake and the allocator run as their own processes against the real broker and store.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pymongo import AsyncMongoClient

from tests.support.services import StartServices
from vcs_intake.domain import Assignment, RequestState
from vcs_intake.store import MongoRequestStore
from vcs_shared.credentials import CredentialsSealer, MeetingCredentials, new_key
from vcs_shared.events import Contact, Urgency
from vcs_shared.store import Document, database_name

pytestmark = pytest.mark.integration


def _assigned_request(request_id: str, sealed: str) -> tuple[RequestState, Assignment]:
    starts_at = datetime.now(UTC) + timedelta(days=2)
    record = RequestState(
        request_id=request_id,
        district_code="4701",
        province_code="47",
        title="ประชุมก่อนเปลี่ยนกุญแจ",
        starts_at=starts_at,
        ends_at=starts_at + timedelta(hours=2),
        participants=20,
        urgency=Urgency.normal,
        needs_support=False,
        contact=Contact(name="สมชาย ใจดี", email="somchai@example.go.th", phone="042-711360"),
        submitted_at=datetime.now(UTC),
        idempotency_key=f"4701:{request_id}",
        fingerprint="-",
    )
    assignment = Assignment(
        meeting_id="3475946456",
        capacity=300,
        join_url="https://zoom.example/j/3475946456",
        pool="province",
        sealed_credentials=sealed,
    )
    return record, assignment


async def test_a_request_sealed_with_a_retired_key_reads_as_credentials_unavailable(
    start_services: StartServices,
    http: httpx.AsyncClient,
    mongo: AsyncMongoClient[Document],
    namespace: str,
) -> None:
    await start_services("intake")
    retired = CredentialsSealer(new_key())
    sealed = retired.seal(
        MeetingCredentials(passcode="483920", join_url="https://zoom.example/j/3475946456?pwd=x")
    )
    record, assignment = _assigned_request("sealed-with-a-retired-key", sealed)
    store = MongoRequestStore(mongo[database_name(namespace, "intake")])
    await store.insert(record, record.submitted("not-opened-here"))
    await store.assign(record.request_id, assignment)

    response = await http.get(f"/v1/requests/{record.request_id}")

    assert response.status_code == 200, response.text
    shown = response.json()["assignment"]
    assert shown["credentials_unavailable"] == "credentials unavailable: key retired"
    assert shown["passcode"] is None
    assert shown["meeting_id"] == "3475946456"
    assert shown["join_url"] == "https://zoom.example/j/3475946456"  # no passcode in it
    assert "483920" not in response.text


async def test_days_at_the_end_of_the_calendar_and_deep_yaml_are_4xx(
    start_services: StartServices, http: httpx.AsyncClient
) -> None:
    await start_services("intake", "allocator")

    for day in ("9999-12-31", "0001-01-01"):
        for path in ("/v1/requests", "/v1/admin/reservations"):
            response = await http.get(path, params={"date": day})
            assert response.status_code == 422, (path, day, response.text)
            [error] = response.json()["detail"]
            assert error["loc"] == ["query", "date"], error
    assert (await http.get("/v1/admin/reservations", params={"date": "9998-12-31"})).json() == []

    nested = "- " + "[" * 5000 + "]" * 5000 + "\n"
    reloaded = await http.post(
        "/v1/admin/pools/reload", content=nested, headers={"Content-Type": "application/yaml"}
    )
    assert 400 <= reloaded.status_code < 500, reloaded.text
    assert "nested too deeply" in reloaded.text
    pools = await http.get("/v1/admin/pools", params={"province": "47"})
    assert pools.status_code == 200
    assert pools.json()["items"]  # the pool loaded at start is still there
