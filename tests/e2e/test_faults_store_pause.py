"""The store freezes (SIGSTOP) in the middle of a run and thaws (SIGCONT): the services wait
or retry instead of failing, /healthz reports the store down and then up again, and every
accepted request reaches a final state exactly once.

A submit the frozen store does not answer is a ``503`` that says the outcome is unknown (the
insert may have reached the store and be applied when it thaws); the office retries it with
the same Idempotency-Key, which never makes a second request.

The frozen store is a private nx-27017 server for this module, so no other test's store
is paused. A submit that arrives while the store is frozen is either held until it thaws
(202) or answered 503 (outcome unknown); the office retries a 503 with the same
Idempotency-Key, which never makes a second request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from pymongo import AsyncMongoClient

from tests.support.auth import BearerAuth, national_operator_token
from tests.support.faults import (
    count_assignments,
    find_duplicates,
    spread_request,
    submit_all,
    wait_all_final,
)
from tests.support.services import StartServices
from tests.support.tap import EventTap
from tests.support.waiting import eventually
from vcs_shared.store import Document, database_name
from vcs_tools.devstack import EmbeddedStore, SmtpSink

pytestmark = pytest.mark.e2e

BEFORE = 20
DURING = 5


@pytest.fixture(scope="module")
def private_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStore]:
    store = EmbeddedStore(tmp_path_factory.mktemp("store-to-pause")).start()
    try:
        yield store
    finally:
        store.stop()


@pytest.fixture(scope="module")
def mongodb_url(private_store: EmbeddedStore) -> str:
    """The services, and the test's own client, use the private store of this module."""
    return private_store.url


async def test_a_frozen_store_loses_nothing_and_the_services_recover(
    private_store: EmbeddedStore,
    start_services: StartServices,
    http: httpx.AsyncClient,
    tap: EventTap,
    mongo: AsyncMongoClient[Document],
    namespace: str,
    smtp_sink: SmtpSink,
    request: pytest.FixtureRequest,
) -> None:
    services = await start_services()
    before = await submit_all(http, [spread_request(i) for i in range(BEFORE)])

    private_store.pause()
    try:

        async def store_reported_down() -> bool:
            response = await http.get("/healthz")
            return response.status_code == 503 and response.json()["store"] == "down"

        await eventually(store_reported_down, timeout=30, what="/healthz reporting the store down")
        bodies = {f"pause-{i}": spread_request(BEFORE + i) for i in range(DURING)}
        during_outage = [
            asyncio.create_task(
                http.post("/v1/requests", json=body, headers={"Idempotency-Key": k})
            )
            for k, body in bodies.items()
        ]
        # One more health round trip (its ping waits out its timeout) while the submits are
        # in flight: they reach the intake, and the frozen store, before it thaws.
        await eventually(store_reported_down, timeout=30, what="the store still down")
    finally:
        private_store.resume()
    answers = dict(zip(bodies, await asyncio.gather(*during_outage), strict=True))
    first_answers = sorted(r.status_code for r in answers.values())
    assert set(first_answers) <= {202, 503}
    for key, response in answers.items():
        if response.status_code == 503:  # outcome unknown: the office retries with its key
            answers[key] = await http.post(
                "/v1/requests", json=bodies[key], headers={"Idempotency-Key": key}
            )
    assert {r.status_code for r in answers.values()} <= {200, 202}
    during = [r.json()["request_id"] for r in answers.values()]

    requests = [*before, *during]
    finals = await wait_all_final(http, requests, timeout=90)
    assert set(finals.values()) == {"delivered"}, finals
    assert all(process.alive() for process in services)
    healthy = await http.get("/healthz")
    assert healthy.status_code == 200

    intake = mongo[database_name(namespace, "intake")]["requests"]
    assert await intake.count_documents({}) == BEFORE + DURING
    events = [m.cloudevent for m in tap.messages]
    duplicates = await find_duplicates(mongo, namespace, requests, events, smtp_sink)
    assert not duplicates, duplicates
    assert set((await count_assignments(mongo, namespace, requests)).values()) == {1}
    request.node.user_properties.append(("answers_while_frozen", first_answers))


async def test_a_submit_the_frozen_store_never_answers_is_503_outcome_unknown(
    private_store: EmbeddedStore,
    start_services: StartServices,
    intake_url: str,
    mongo: AsyncMongoClient[Document],
    namespace: str,
) -> None:
    await start_services("intake")
    body = spread_request(0)
    key = {"Idempotency-Key": "frozen-4701-1"}
    auth = BearerAuth(national_operator_token())
    async with httpx.AsyncClient(base_url=intake_url, timeout=120, auth=auth) as client:
        private_store.pause()
        try:
            unanswered = await client.post("/v1/requests", json=body, headers=key)
        finally:
            private_store.resume()
        retried = await client.post("/v1/requests", json=body, headers=key)

    assert unanswered.status_code == 503, unanswered.text
    assert unanswered.headers["retry-after"] == "5"
    assert unanswered.json()["outcome"] == "unknown"
    assert "may or may not have been stored" in unanswered.json()["detail"]
    assert retried.status_code in (200, 202)
    intake = mongo[database_name(namespace, "intake")]["requests"]
    assert await intake.count_documents({}) == 1
