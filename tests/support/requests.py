"""Building request bodies the way an office would send them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx

from tests.support.waiting import eventually
from vcs_shared.thaitime import BANGKOK


def tomorrow_at(hour: int, minute: int = 0, *, days: int = 1) -> datetime:
    base = datetime.now(BANGKOK) + timedelta(days=days)
    return base.replace(hour=hour, minute=minute, second=0, microsecond=0)


def request_body(
    district_code: str = "4701",
    *,
    starts_at: datetime | None = None,
    hours: float = 2,
    participants: int = 250,
    **overrides: Any,
) -> dict[str, Any]:
    start = starts_at or tomorrow_at(9)
    body: dict[str, Any] = {
        "district_code": district_code,
        "title": "ประชุมติดตามสถานการณ์",
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=hours)).isoformat(),
        "participants": participants,
        "urgency": "urgent",
        "needs_support": False,
        "contact": {"name": "สมชาย ใจดี", "email": "somchai@example.go.th", "phone": "042-711360"},
    }
    body.update(overrides)
    return body


async def wait_status(http: httpx.AsyncClient, request_id: str, *statuses: str) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        body: dict[str, Any] = (await http.get(f"/v1/requests/{request_id}")).json()
        return body if body["status"] in statuses else None

    return await eventually(reached, timeout=30, what=f"status in {statuses}")
