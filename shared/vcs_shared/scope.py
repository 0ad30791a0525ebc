"""Where an operator may act: the provinces of its token, and the pools that belong to them.

Every admin read and write goes through a :class:`Scope` (issue 11.1), the same
way in every service, because each service applies the rules itself for the
objects it owns (it knows their province):

* a list is filtered to the scope (:meth:`Scope.covers_province`, :meth:`Scope.covers_pool`);
* a single object outside it answers ``404``, exactly like one that does not exist;
* a write naming anything outside it is refused whole, ``403`` naming what is outside
  (:meth:`Scope.outside_pools`).

A pool is a province code (``47``) or a region's overflow pool (``region-12``).
An overflow pool belongs to an operator who covers every province of that region
(a region-12 operator, or the national role); a province-47 operator does not own
``region-12``, which the other provinces of the region share. An overflow pool of a
region that is not configured belongs to the national role only.

:mod:`vcs_shared.http_auth` turns a scope into a FastAPI dependency
(``OperatorScope``) with the ``403``/``404`` answers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from vcs_shared.auth import Principal
from vcs_shared.offices import REGION_PROVINCES

REGION_POOL_PREFIX = "region-"


@dataclass(frozen=True, slots=True)
class Scope:
    """The provinces an operator may act in; ``national`` covers all of them and every pool."""

    provinces: frozenset[str]
    national: bool = False

    @classmethod
    def of(cls, principal: Principal) -> Scope:
        return cls(provinces=principal.provinces, national=principal.national)

    def covers_province(self, province_code: str | None) -> bool:
        """Whether objects of this province are the caller's; an unknown province is only
        the national role's (a dead letter whose routing key names no province, say)."""
        if self.national:
            return True
        return province_code is not None and province_code in self.provinces

    def covers_pool(self, pool: str) -> bool:
        if self.national:
            return True
        if pool.startswith(REGION_POOL_PREFIX):
            region = REGION_PROVINCES.get(pool.removeprefix(REGION_POOL_PREFIX))
            return region is not None and region <= self.provinces
        return pool in self.provinces

    def outside_pools(self, pools: Iterable[str]) -> list[str]:
        """The pools among ``pools`` that are not the caller's, sorted, each once."""
        return sorted({pool for pool in pools if not self.covers_pool(pool)})

    def describe(self) -> str:
        """The provinces, for error messages."""
        return "all of them" if self.national else ", ".join(sorted(self.provinces))
