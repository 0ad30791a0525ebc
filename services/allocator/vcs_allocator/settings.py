"""The allocator's one settings class."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import Field

from vcs_allocator.domain import AllocationPolicy
from vcs_shared.settings import CommonSettings, TokenSettings


class AllocatorSettings(CommonSettings, TokenSettings):
    buffer_minutes: int = Field(default=15, ge=0, le=240, description="Turnover buffer")
    slot_minutes: int = Field(default=5, ge=1, le=60, description="Reservation grid")
    max_duration_hours: int = Field(default=12, ge=1, le=72)
    use_overflow: bool = Field(default=True, description="Fall back to the region's overflow pool")
    pool_file: Path | None = Field(
        default=None, description="Pool file loaded when the store has no rooms yet"
    )
    orphan_lease_seconds: float = Field(
        default=600,
        gt=0,
        description=(
            "How long a claim may stay undecided before the sweeper frees its slots; "
            "an allocation older than half of it claims afresh"
        ),
    )
    orphan_sweep_seconds: float | None = Field(
        default=None, gt=0, description="Sweep interval; default: lease / 4, at most 60 s"
    )
    admin_port: int = Field(
        default=8001,
        ge=0,
        le=65535,
        description="Port of the internal admin API (the intake forwards to it); 0 disables it",
    )
    admin_host: str = Field(
        default="127.0.0.1", description="Address the internal admin API listens on"
    )
    prefetch: int = Field(default=16, ge=1, le=1000)

    def policy(self) -> AllocationPolicy:
        return AllocationPolicy(
            buffer=timedelta(minutes=self.buffer_minutes),
            slot=timedelta(minutes=self.slot_minutes),
            max_duration=timedelta(hours=self.max_duration_hours),
        )

    def orphan_lease(self) -> timedelta:
        return timedelta(seconds=self.orphan_lease_seconds)

    def orphan_sweep_interval(self) -> float:
        if self.orphan_sweep_seconds is not None:
            return self.orphan_sweep_seconds
        return min(60.0, self.orphan_lease_seconds / 4)
