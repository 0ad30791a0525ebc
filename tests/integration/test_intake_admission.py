"""The intake sheds submits it cannot take in time: beyond ``VCS_MAX_SUBMITS_IN_FLIGHT``
submits under way, one more is answered ``503`` with ``Retry-After`` at once, and nothing of
it is stored, so its retry (same Idempotency-Key) makes exactly one request.

A chaos soak offering more than the machine could handle saw the intake's answers grow to
38-150 s: callers timed out and retried into an ever longer queue. Here the store is a
private nx-27017 server frozen with SIGSTOP, so a submit admitted before it stays under way
for as long as the test needs.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import httpx
import pytest
from pymongo import AsyncMongoClient

from tests.support.requests import request_body
from tests.support.services import StartServices
from vcs_shared.store import Document, database_name
from vcs_tools.devstack import EmbeddedStore

pytestmark = pytest.mark.integration


@pytest.fixture
def private_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStore]:
    store = EmbeddedStore(tmp_path_factory.mktemp("store-to-freeze")).start()
    try:
        yield store
    finally:
        store.resume()
        store.stop()


async def test_a_submit_beyond_the_bound_is_refused_at_once_and_stores_nothing(
    start_services: StartServices,
    private_store: EmbeddedStore,
    http: httpx.AsyncClient,
    namespace: str,
) -> None:
    await start_services(
        "intake",
        extra_env={"VCS_MONGODB_URL": private_store.url, "VCS_MAX_SUBMITS_IN_FLIGHT": "1"},
    )
    keys = [str(uuid.uuid4()), str(uuid.uuid4())]

    async def submit(key: str) -> httpx.Response:
        headers = {"Idempotency-Key": key}
        return await http.post("/v1/requests", json=request_body(), headers=headers)

    private_store.pause()
    try:
        calls = {asyncio.create_task(submit(key)): key for key in keys}
        done, pending = await asyncio.wait(calls, return_when=asyncio.FIRST_COMPLETED)
        # The store is frozen: only a submit that never reached it can have been answered.
        assert len(done) == 1
        assert len(pending) == 1
        [refused_call] = done
        refused = refused_call.result()
        assert refused.status_code == 503, refused.text
        assert refused.headers["Retry-After"] == "2"
        assert refused.json()["outcome"] == "not_stored"
        assert "Idempotency-Key" in refused.json()["detail"]
    finally:
        private_store.resume()
    [admitted_call] = pending
    admitted = await admitted_call
    assert admitted.status_code == 202, admitted.text

    retried = await submit(calls[refused_call])
    assert retried.status_code == 202, retried.text

    client: AsyncMongoClient[Document] = AsyncMongoClient(private_store.url)
    try:
        stored = client[database_name(namespace, "intake")]["requests"]
        documents = await stored.find({}, {"_id": 1}).to_list()
    finally:
        await client.close()
    assert sorted(d["_id"] for d in documents) == sorted(
        [admitted.json()["request_id"], retried.json()["request_id"]]
    )
