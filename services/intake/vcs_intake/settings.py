"""The intake's one settings class."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Self

from pydantic import Field, PrivateAttr, SecretStr, model_validator

from vcs_intake.domain import BookingRules
from vcs_intake.web.single_sign_on import OidcProvider
from vcs_shared.settings import CommonSettings, StuckSettings, TokenSettings


class IntakeSettings(CommonSettings, TokenSettings, StuckSettings):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, description="Largest accepted body")
    prefetch: int = Field(default=64, ge=1, le=1000)
    allocator_url: str = Field(
        default="http://127.0.0.1:8001",
        pattern=r"^https?://\S+$",
        description="The allocator's internal admin API (pools, reservations), forwarded to",
    )
    desk_url: str = Field(
        default="http://127.0.0.1:8002",
        pattern=r"^https?://\S+$",
        description="The desk's internal API (dead letters), forwarded to",
    )
    notifier_url: str = Field(
        default="http://127.0.0.1:8003",
        pattern=r"^https?://\S+$",
        description="The notifier's internal API (redelivery), forwarded to",
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        pattern=r"^https?://[^/\s]+$",
        description="Where people reach the intake (invite links; https: cookies are Secure)",
    )
    web_assets_dir: Path | None = Field(
        default=None,
        description="node_modules with the pages' npm assets (default: the repo's web-assets)",
    )
    supervisor_status_file: Path | None = Field(
        default=None,
        description="Status file of `vcs run`'s supervisor, shown in /healthz (set by `vcs run`)",
    )
    contract_dir: Path | None = Field(
        default=None,
        description=(
            "Folder of the event contract `make contract` generates (asyncapi.yaml, schemas/), "
            "served at /asyncapi.yaml and /schemas/ (default: the repo's docs)"
        ),
    )
    booking_horizon_days: int = Field(
        default=365, ge=1, le=3650, description="How far ahead a meeting may be booked"
    )
    max_duration_hours: int = Field(
        default=12, ge=1, le=72, description="Longest meeting (the allocator's own limit too)"
    )
    max_open_requests_per_office: int = Field(
        default=20,
        ge=1,
        description="Upcoming bookings one office may hold at once (operators are not limited)",
    )
    max_submits_in_flight: int = Field(
        default=64,
        ge=1,
        le=10_000,
        description=(
            "Submits (POST /v1/requests) handled at once; beyond it a submit is answered 503 "
            "with Retry-After at once, before anything is stored"
        ),
    )

    oidc_issuer: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s?#]+$",
        description=(
            "The OpenID Connect provider people may sign in through (the department's single "
            "sign-on, ThaID): its issuer URL, where /.well-known/openid-configuration is; "
            "unset: password sign-in only"
        ),
    )
    oidc_client_id: str | None = Field(
        default=None, min_length=1, description="This service's client id at that provider"
    )
    oidc_client_secret: SecretStr | None = Field(
        default=None, description="This service's client secret at that provider"
    )

    _single_sign_on: OidcProvider | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _single_sign_on_whole(self) -> Self:
        """All three OIDC settings or none: half a configuration would show a button that
        cannot work."""
        issuer, client_id, secret = self.oidc_issuer, self.oidc_client_id, self.oidc_client_secret
        if issuer is not None and client_id is not None and secret is not None:
            self._single_sign_on = OidcProvider(issuer, client_id, secret.get_secret_value())
            return self
        names = ("oidc_issuer", "oidc_client_id", "oidc_client_secret")
        missing = [f"VCS_{name.upper()}" for name in names if getattr(self, name) is None]
        if len(missing) < len(names):
            raise ValueError(
                f"single sign-on is half configured: set {', '.join(missing)} too "
                "(or none of VCS_OIDC_ISSUER, VCS_OIDC_CLIENT_ID, VCS_OIDC_CLIENT_SECRET)"
            )
        return self

    def single_sign_on(self) -> OidcProvider | None:
        """The OpenID Connect provider people may sign in through; None: password sign-in only."""
        return self._single_sign_on

    def booking_rules(self) -> BookingRules:
        return BookingRules(
            horizon=timedelta(days=self.booking_horizon_days),
            max_duration=timedelta(hours=self.max_duration_hours),
            max_open_per_office=self.max_open_requests_per_office,
        )
