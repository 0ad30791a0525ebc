"""The intake's one settings class."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from vcs_shared.settings import CommonSettings, TokenSettings


class IntakeSettings(CommonSettings, TokenSettings):
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
