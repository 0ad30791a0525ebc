"""The allocator's one settings class."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator

from vcs_allocator.domain import AllocationPolicy
from vcs_allocator.zoom import ZoomAccount
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
    zoom_account_id: str | None = Field(
        default=None, description="Zoom server-to-server OAuth app's account id; unset: off"
    )
    zoom_client_id: str | None = Field(default=None, description="Zoom OAuth app's client id")
    zoom_client_secret: SecretStr | None = Field(
        default=None, description="Zoom OAuth app's client secret"
    )
    zoom_api_url: str = Field(default="https://api.zoom.us/v2", description="Zoom REST API base")
    zoom_oauth_url: str = Field(
        default="https://zoom.us/oauth/token", description="Zoom OAuth token endpoint"
    )
    zoom_daily_limit_per_host: int = Field(
        default=100, ge=1, le=10000, description="Meeting updates Zoom allows per host and day"
    )
    zoom_poll_seconds: float = Field(
        default=15, gt=0, le=300, description="How often due passcode changes are looked for"
    )
    zoom_fallback: Literal["pool_passcode", "reject"] = Field(
        default="pool_passcode",
        description="When Zoom cannot set a booking's passcode: the pool's passcode, or reject",
    )

    @model_validator(mode="after")
    def _zoom_all_or_nothing(self) -> Self:
        """Half a set of Zoom credentials is a typo, not a wish to leave the feature off."""
        given = [
            self.zoom_account_id is not None,
            self.zoom_client_id is not None,
            self.zoom_client_secret is not None,
        ]
        if any(given) and not all(given):
            raise ValueError(
                "set all of VCS_ZOOM_ACCOUNT_ID, VCS_ZOOM_CLIENT_ID and VCS_ZOOM_CLIENT_SECRET "
                "(per-booking Zoom passcodes), or none"
            )
        return self

    def zoom_account(self) -> ZoomAccount | None:
        """The Zoom account to set per-booking passcodes with; None when the feature is off."""
        if (
            self.zoom_account_id is None
            or self.zoom_client_id is None
            or self.zoom_client_secret is None
        ):
            return None
        return ZoomAccount(
            account_id=self.zoom_account_id,
            client_id=self.zoom_client_id,
            client_secret=self.zoom_client_secret.get_secret_value(),
            api_url=self.zoom_api_url,
            oauth_url=self.zoom_oauth_url,
        )

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
