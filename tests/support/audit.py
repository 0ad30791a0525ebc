"""Reading the audit log in tests: exactly the entries an action should have made."""

from __future__ import annotations

import json
from typing import Literal, TypedDict

import httpx

from tests.support.auth import bearer
from tests.support.waiting import eventually


class EntryActor(TypedDict):
    kind: str
    id: str
    name: str


class EntryTarget(TypedDict):
    kind: str
    id: str


class Entry(TypedDict):
    """One item of ``GET /v1/admin/audit`` as the JSON carries it (the desk's ``AuditItem``):
    a typed record, still read by key, so a test names fields the answer really has."""

    id: str
    at: str
    actor: EntryActor
    action: str
    outcome: Literal["success", "failure"]
    target: EntryTarget
    provinces: list[str]
    before: str | None
    after: str | None
    detail: str | None
    source: str


async def entries(client: httpx.AsyncClient, **params: str) -> list[Entry]:
    answer = await client.get("/v1/admin/audit", params={"limit": "200", **params})
    assert answer.status_code == 200, answer.text
    items: list[Entry] = answer.json()["items"]
    return items


async def exactly(
    client: httpx.AsyncClient, count: int, *, target: str | None = None, **params: str
) -> list[Entry]:
    """Waits for ``count`` entries matching (``target``: the target's id), then checks there
    are exactly that many."""

    async def matching() -> list[Entry]:
        found = await entries(client, **params)
        return [e for e in found if target is None or e["target"]["id"] == target]

    async def enough() -> list[Entry] | None:
        found = await matching()
        return found if len(found) >= count else None

    await eventually(enough, timeout=30, what=f"{count} audit entries {params} {target or ''}")
    found = await matching()
    assert len(found) == count, json.dumps(found, ensure_ascii=False, indent=1)
    return found


def client_of(intake_url: str, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=intake_url, headers=bearer(token), timeout=30)
