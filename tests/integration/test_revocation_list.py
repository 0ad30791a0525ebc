"""The intake's revocation list answers from a copy at most two seconds old: a revocation by
another process (``vcs token revoke``) counts once the copy is that old, one read serves every
check meanwhile, and the process's own revocation counts at once."""

from __future__ import annotations

import pytest
from pymongo import AsyncMongoClient

from tests.support.clock import Clock
from vcs_intake.revocations import MAX_AGE, MongoRevocationList
from vcs_shared.store import Document, database_name

pytestmark = pytest.mark.integration


async def test_another_process_s_revocation_counts_once_the_copy_is_two_seconds_old(
    mongo: AsyncMongoClient[Document], namespace: str
) -> None:
    db = mongo[database_name(namespace, "intake")]
    clock = Clock()
    intake = MongoRevocationList(db, clock=clock)
    command_line = MongoRevocationList(db)
    assert not await intake.is_revoked("jti-1")  # the copy is read now: nothing revoked

    assert await command_line.revoke("jti-1", expires_at=None, subject=None, by="test")

    clock.now += MAX_AGE - 0.1
    assert not await intake.is_revoked("jti-1")  # still the copy read before
    clock.now += 0.2
    assert await intake.is_revoked("jti-1")
    assert not await intake.is_revoked("jti-2")


async def test_the_process_s_own_revocation_counts_at_once(
    mongo: AsyncMongoClient[Document], namespace: str
) -> None:
    intake = MongoRevocationList(mongo[database_name(namespace, "intake")], clock=Clock())
    assert not await intake.is_revoked("jti-1")

    assert await intake.revoke("jti-1", expires_at=None, subject=None, by="test")

    assert await intake.is_revoked("jti-1")
