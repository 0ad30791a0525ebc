"""The fault tests' own counting can see what they claim (issue 11, point 9): a second
document for one request, stored under another key, is a duplicate."""

from __future__ import annotations

import pytest
from pymongo import AsyncMongoClient

from tests.support.faults import find_duplicates
from vcs_shared.store import Document, database_name
from vcs_tools.devstack import SmtpSink

pytestmark = pytest.mark.integration


async def test_a_second_document_for_one_request_under_another_key_is_a_duplicate(
    mongo: AsyncMongoClient[Document], namespace: str, smtp_sink: SmtpSink
) -> None:
    rid = "request-with-two-decisions"
    for service, collection in (
        ("intake", "requests"),
        ("allocator", "decisions"),
        ("notifier", "deliveries"),
    ):
        await mongo[database_name(namespace, service)][collection].insert_one(
            {"_id": rid, "request_id": rid}
        )
    clean = await find_duplicates(mongo, namespace, [rid], [], smtp_sink)
    assert not clean, clean

    decisions = mongo[database_name(namespace, "allocator")]["decisions"]
    await decisions.insert_one({"_id": f"retry-{rid}", "request_id": rid})
    found = await find_duplicates(mongo, namespace, [rid], [], smtp_sink)

    assert found.documents == {f"allocator.decisions.{rid}": 2}

    missing = await find_duplicates(mongo, namespace, [rid, "never-stored"], [], smtp_sink)
    assert missing.documents["intake.requests.never-stored"] == 0
