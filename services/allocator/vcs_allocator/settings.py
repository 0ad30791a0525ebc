"""The allocator's one settings class."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import Field

from vcs_allocator.domain import AllocationPolicy
from vcs_shared.settings import CommonSettings


class AllocatorSettings(CommonSettings):
    buffer_minutes: int = Field(default=15, ge=0, le=240, description="Turnover buffer")
    slot_minutes: int = Field(default=5, ge=1, le=60, description="Reservation grid")
    max_duration_hours: int = Field(default=12, ge=1, le=72)
    use_overflow: bool = Field(default=True, description="Fall back to the region's overflow pool")
    pool_file: Path | None = Field(
        default=None, description="Pool file loaded when the store has no rooms yet"
    )
    orphan_lease_seconds: int = Field(default=600, ge=30)
    prefetch: int = Field(default=16, ge=1, le=1000)

    def policy(self) -> AllocationPolicy:
        return AllocationPolicy(
            buffer=timedelta(minutes=self.buffer_minutes),
            slot=timedelta(minutes=self.slot_minutes),
            max_duration=timedelta(hours=self.max_duration_hours),
        )
