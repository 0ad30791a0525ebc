"""Zoom's per-host daily allowance against the real store: never more than the limit, even with
many takers at once; counted per host and per UTC day."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest
from pymongo import AsyncMongoClient

from vcs_allocator.zoom_budget import HostBudget
from vcs_shared.store import Document, database_name

pytestmark = pytest.mark.contract

DAY = date(2026, 12, 7)


def budget_of(mongo: AsyncMongoClient[Document], namespace: str, limit: int) -> HostBudget:
    return HostBudget(mongo[database_name(namespace, "allocator")], limit=limit)


async def test_concurrent_takers_spend_exactly_the_limit(
    mongo: AsyncMongoClient[Document], namespace: str
) -> None:
    first, second = budget_of(mongo, namespace, 5), budget_of(mongo, namespace, 5)

    taken = await asyncio.gather(
        *(budget.take("host-a@example.go.th", DAY) for budget in [first, second] * 8)
    )

    assert taken.count(True) == 5
    assert await first.left(["host-a@example.go.th"], DAY) == {"host-a@example.go.th": 0}


async def test_allowance_is_per_host_and_per_day(
    mongo: AsyncMongoClient[Document], namespace: str
) -> None:
    budget = budget_of(mongo, namespace, 2)
    for _ in range(3):
        await budget.take("host-a", DAY)
    await budget.take("host-b", DAY)

    assert await budget.left(["host-a", "host-b", "host-c"], DAY) == {
        "host-a": 0,
        "host-b": 1,
        "host-c": 2,
    }
    assert await budget.take("host-a", date(2026, 12, 8)) is True
    assert await budget.take("host-a", DAY) is False
