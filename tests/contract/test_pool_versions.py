"""Pool reloads are all or nothing and one at a time, and never move a Meeting ID between
pools unless the file says so (issue 11.8), against whatever store is configured."""

from __future__ import annotations

import asyncio

import pytest
from pymongo import AsyncMongoClient

from tests.support.store_commands import CommandsTo
from vcs_allocator.domain import Room
from vcs_allocator.pool_store import (
    DIRECTORY_MAX_AGE,
    Directory,
    PoolMovesRefused,
    PoolsNotYours,
    PoolStore,
    _Plan,
)
from vcs_shared.credentials import CredentialsSealer
from vcs_shared.store import Document, database_name

pytestmark = pytest.mark.contract


def room(meeting_id: str, pool: str = "47", *, moved_from: str | None = None) -> Room:
    url = f"https://z.example/j/{meeting_id}"
    return Room(meeting_id, 300, pool, url, "sealed", moved_from=moved_from)


FILE_A = [room(f"1000000{i:02d}") for i in range(10)]
FILE_B = [room(f"2000000{i:02d}") for i in range(10)]


@pytest.fixture
async def pools(
    mongo: AsyncMongoClient[Document], namespace: str, credentials_keys: str
) -> PoolStore:
    store = PoolStore(
        mongo[database_name(namespace, "allocator")], CredentialsSealer(credentials_keys)
    )
    await store.ensure_indexes()
    return store


async def active(pools: PoolStore, pool: str = "47") -> set[str]:
    return {r.meeting_id for r in await pools.rooms([pool])}


class FailingSwitch(PoolStore):
    """A reload that dies after writing its new version, before the switch."""

    async def _switch(self, directory: Directory, plan: _Plan) -> bool:
        raise ConnectionError("the store went away")


async def test_a_reload_failing_midway_leaves_the_old_pool_whole(
    pools: PoolStore, mongo: AsyncMongoClient[Document], namespace: str
) -> None:
    await pools.replace(FILE_A)
    failing = FailingSwitch(mongo[database_name(namespace, "allocator")])

    with pytest.raises(ConnectionError):
        await failing.replace(FILE_B)

    assert await active(pools) == {r.meeting_id for r in FILE_A}
    assert (await pools.directory()).revision == 1
    assert await pools.rooms_collection.count_documents({"meeting_id": FILE_B[0].meeting_id}) == 0


async def test_reloads_racing_apply_one_after_the_other_never_a_mix(
    pools: PoolStore, mongo: AsyncMongoClient[Document], namespace: str
) -> None:
    await pools.replace([room("300000001")])
    other_process = PoolStore(mongo[database_name(namespace, "allocator")])

    changes = await asyncio.gather(pools.replace(FILE_A), other_process.replace(FILE_B))

    assert sorted(c.revision for c in changes) == [2, 3]
    last = FILE_A if changes[0].revision == 3 else FILE_B
    assert await active(pools) == {r.meeting_id for r in last}
    stored = {r.meeting_id: r.active for r in await pools.all_rooms("47")}
    assert {m for m, on in stored.items() if not on} == {
        r.meeting_id for r in [room("300000001"), *(FILE_B if last is FILE_A else FILE_A)]
    }  # the first file's rooms, no longer listed by the last, are kept inactive


async def test_a_meeting_id_moves_between_pools_only_when_its_row_says_so(
    pools: PoolStore,
) -> None:
    await pools.replace([room("400000001", "47"), room("400000002", "47")])

    with pytest.raises(PoolMovesRefused) as refused:
        await pools.replace([room("400000001", "48")])
    assert "400000001 (47 -> 48)" in str(refused.value)
    assert "moved_from" in str(refused.value)
    assert await active(pools, "48") == set()

    with pytest.raises(PoolsNotYours):
        await pools.replace(
            [room("400000001", "48", moved_from="47")], may_change=lambda pool: pool == "48"
        )

    change = await pools.replace([room("400000001", "48", moved_from="47")])

    assert change.moved == ("400000001",)
    assert await active(pools, "48") == {"400000001"}
    assert {r.meeting_id for r in await pools.all_rooms("47")} == {"400000002"}
    assert {r.meeting_id for r in await pools.all_rooms("48")} == {"400000001"}


async def test_rooms_stored_before_pools_were_versioned_are_adopted_once(
    pools: PoolStore,
) -> None:
    await pools.rooms_collection.insert_many(
        [
            {
                "_id": m,
                "capacity": 300,
                "pool": "47",
                "passcode": "pw",
                "join_url": "https://z",
                "active": True,
            }
            for m in ("700000001", "700000002")
        ]
    )

    await pools.ensure_indexes()
    await pools.ensure_indexes()

    assert await active(pools) == {"700000001", "700000002"}
    assert (await pools.directory()).revision == 1
    adopted = await pools.rooms_collection.find_one({"meeting_id": "700000001"})
    assert adopted is not None
    assert "passcode" not in adopted  # sealed on adoption
    change = await pools.replace([room("700000001")])
    assert change.deactivated == 1


async def test_an_allocation_reads_the_directory_at_most_every_two_seconds(
    mongo: AsyncMongoClient[Document], namespace: str, credentials_keys: str
) -> None:
    """Another process's reload counts once this process's directory is two seconds old; this
    process's own reload counts at once; a version deleted meanwhile (two reloads) is not
    taken for an empty pool."""
    db = mongo[database_name(namespace, "allocator")]
    now = [1000.0]
    allocator = PoolStore(db, CredentialsSealer(credentials_keys), clock=lambda: now[0])
    other = PoolStore(db, CredentialsSealer(credentials_keys))  # another allocator's admin API
    await allocator.ensure_indexes()
    await allocator.replace(FILE_A)
    assert await active(allocator) == {r.meeting_id for r in FILE_A}

    await other.replace(FILE_B)
    assert await active(allocator) == {r.meeting_id for r in FILE_A}  # the directory read before
    now[0] += DIRECTORY_MAX_AGE
    assert await active(allocator) == {r.meeting_id for r in FILE_B}

    await allocator.replace(FILE_A)
    assert await active(allocator) == {r.meeting_id for r in FILE_A}  # its own: at once

    starting = PoolStore(db, clock=lambda: now[0])
    assert await starting.rooms(["48"]) == []  # it has read the directory, no rooms yet
    await other.replace(FILE_B)
    await other.replace(FILE_B)  # the version of 47 that directory names is deleted
    assert await active(starting) == {r.meeting_id for r in FILE_B}  # read again, not empty


async def test_allocations_that_find_the_directory_too_old_at_once_share_one_read(
    mongodb_url: str, namespace: str, credentials_keys: str
) -> None:
    """A burst's allocations all find the directory too old at the same moment; one read
    serves them all."""
    reads = CommandsTo("find", "pool_directory")
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        mongodb_url, tz_aware=True, event_listeners=[reads]
    )
    try:
        db = client[database_name(namespace, "allocator")]
        now = [1000.0]
        allocator = PoolStore(db, CredentialsSealer(credentials_keys), clock=lambda: now[0])
        await allocator.ensure_indexes()
        await allocator.replace(FILE_A)
        await allocator.rooms(["47"])
        now[0] += DIRECTORY_MAX_AGE
        before = reads.commands

        found = await asyncio.gather(*(allocator.rooms(["47"]) for _ in range(16)))

        assert reads.commands - before == 1
        assert all(rooms == found[0] for rooms in found)
    finally:
        await client.drop_database(database_name(namespace, "allocator"))
        await client.close()
