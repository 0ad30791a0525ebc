"""The desk's one settings class."""

from __future__ import annotations

from pydantic import Field

from vcs_shared.settings import CommonSettings, StuckSettings, TokenSettings


class DeskSettings(CommonSettings, TokenSettings, StuckSettings):
    desk_host: str = Field(
        default="127.0.0.1", description="Address the desk's internal API listens on"
    )
    desk_port: int = Field(
        default=8002, ge=1, le=65535, description="Port of the desk's internal API"
    )
