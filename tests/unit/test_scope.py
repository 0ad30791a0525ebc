"""The scope rules every admin endpoint applies: which provinces and pools are the caller's."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.support.auth import codec
from vcs_shared.scope import Scope

pytestmark = pytest.mark.unit

HOUR = timedelta(hours=1)


def scope_of(
    *, region: str | None = None, provinces: tuple[str, ...] = (), national: bool = False
) -> Scope:
    issued = codec.issue_operator(
        "x", region=region, provinces=provinces, national=national, ttl=HOUR
    )
    return Scope.of(codec.verify(issued.token))


def test_a_region_operator_owns_its_provinces_and_its_overflow_pool() -> None:
    scope = scope_of(region="12")

    assert [scope.covers_pool(p) for p in ("47", "48", "49", "38", "region-12")] == [True] * 5
    assert scope.outside_pools(["47", "10", "region-3", "10", "region-12"]) == ["10", "region-3"]
    assert scope.covers_province("47")
    assert not scope.covers_province("10")
    assert not scope.covers_province(None)


def test_a_province_operator_does_not_own_the_overflow_pool_its_region_shares() -> None:
    scope = scope_of(provinces=("47",))

    assert scope.covers_pool("47")
    assert scope.outside_pools(["region-12", "48"]) == ["48", "region-12"]
    assert scope_of(provinces=("47", "48", "49", "38")).covers_pool("region-12")


def test_the_national_role_covers_every_pool_even_an_unconfigured_region() -> None:
    scope = scope_of(national=True)

    assert scope.outside_pools(["10", "96", "region-12", "region-3"]) == []
    assert scope.covers_province(None)
    assert scope.describe() == "all of them"
    assert not scope_of(region="12").covers_pool("region-3")
