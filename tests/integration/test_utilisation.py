"""Utilisation per Bangkok day and province (issue 13), from the allocator's decisions, on the
intake's address: exact counts and hours across two days and two provinces, the scope
rules, and a 422 naming the field for bad input."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.integration.test_admin_scope import NATIONAL, REGION_12, admin
from tests.integration.test_allocator_concurrency import (
    START,
    all_decided,
    outcomes,
    publish,
    submitted,
)
from tests.support.auth import bearer
from tests.support.paths import SAMPLE_POOL
from tests.support.tap import EventTap
from vcs_allocator.pool import load_pool_file
from vcs_shared.broker import Topology
from vcs_shared.thaitime import BANGKOK

pytestmark = pytest.mark.integration
__all__ = ["admin"]

DAY_1 = START.astimezone(BANGKOK).date()
DAY_2 = DAY_1 + timedelta(days=1)
RANGE = {"from": DAY_1.isoformat(), "to": DAY_2.isoformat()}


def rows(response: httpx.Response) -> dict[tuple[str, str], dict[str, Any]]:
    assert response.status_code == 200, response.text
    return {(i["date"], i["province_code"]): i for i in response.json()["items"]}


async def test_utilisation_counts_requests_hours_and_rejections_per_day_and_province(
    admin: httpx.AsyncClient, tap: EventTap, amqp_url: str, topology: Topology
) -> None:
    later = START + timedelta(days=1)
    events = [
        submitted("4701", participants=250),
        submitted("4701", participants=100_000),
        submitted("1001", starts_at=later, ends_at=later + timedelta(hours=3), participants=250),
        submitted("1001", starts_at=later, ends_at=later + timedelta(hours=3), participants=250),
    ]
    await publish(amqp_url, topology, events)
    await all_decided(tap, {e.request_id for e in events}, timeout=30)
    decided = {e.request_id: next(iter(outcomes(tap)[e.request_id])) for e in events}
    assert decided[events[0].request_id][0] == "assigned"
    assert decided[events[1].request_id][0] == "rejected"
    assert decided[events[2].request_id][0] == "assigned"
    assert decided[events[3].request_id][0] == "rejected"  # pool 10 has one room

    national = rows(
        await admin.get("/v1/admin/utilisation", params=RANGE, headers=bearer(NATIONAL))
    )
    rooms_47 = sum(1 for r in load_pool_file(SAMPLE_POOL) if r.active and r.pool == "47")
    sakon_1 = national[(DAY_1.isoformat(), "47")]
    assert sakon_1 == {
        "date": DAY_1.isoformat(),
        "province_code": "47",
        "rooms": rooms_47,
        "hours_booked": 2.0,
        "hours_available": rooms_47 * 24,
        "requests": 2,
        "rejections": {decided[events[1].request_id][1]: 1},
    }
    assert national[(DAY_2.isoformat(), "47")]["requests"] == 0
    bangkok_2 = national[(DAY_2.isoformat(), "10")]
    assert (bangkok_2["rooms"], bangkok_2["hours_booked"], bangkok_2["hours_available"]) == (
        1,
        3.0,
        24,
    )
    assert (bangkok_2["requests"], bangkok_2["rejections"]) == (
        2,
        {decided[events[3].request_id][1]: 1},
    )
    assert national[(DAY_1.isoformat(), "10")]["requests"] == 0

    region = rows(await admin.get("/v1/admin/utilisation", params=RANGE, headers=bearer(REGION_12)))
    assert {province for _, province in region} == {"47", "48", "49", "38"}
    assert "10" not in {province for _, province in region}
    assert region[(DAY_1.isoformat(), "47")] == sakon_1
    refused = await admin.get(
        "/v1/admin/utilisation", params={**RANGE, "province": "10"}, headers=bearer(REGION_12)
    )
    assert refused.status_code == 403
    only_10 = rows(
        await admin.get(
            "/v1/admin/utilisation", params={**RANGE, "province": "10"}, headers=bearer(NATIONAL)
        )
    )
    assert set(only_10) == {(DAY_1.isoformat(), "10"), (DAY_2.isoformat(), "10")}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-12-05", "to": "2026-12-04"}, "to"),
        ({"from": "2026-01-01", "to": "2026-12-31"}, "to"),
        ({"from": "2026-13-01", "to": "2026-12-04"}, "from"),
        ({"from": "2026-12-01", "to": "yesterday"}, "to"),
        ({"from": "2026-12-01", "to": "2026-12-04", "province": "99"}, "province"),
        ({"from": "2026-12-01", "to": "2026-12-04", "province": "4x"}, "province"),
        ({"to": "2026-12-04"}, "from"),
    ],
)
async def test_bad_input_is_a_422_naming_the_field(
    admin: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    response = await admin.get("/v1/admin/utilisation", params=params, headers=bearer(NATIONAL))
    assert response.status_code == 422, response.text
    assert [e["loc"][-1] for e in response.json()["detail"]] == [field]
