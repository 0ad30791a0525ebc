"""The notifier's one settings class."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import Field, SecretStr, field_validator

from vcs_notifier.reminders import parse_leads
from vcs_notifier.webhook_guard import parse_networks
from vcs_shared.settings import CommonSettings, TokenSettings


class NotifierSettings(CommonSettings, TokenSettings):
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = Field(default=10.0, gt=0)
    mail_from: str = "DOPA VCS <no-reply@vcs.dopa.go.th>"
    send_attempts: int = Field(default=5, ge=1, le=20, description="Tries of a temporary failure")
    prefetch: int = Field(
        default=64,
        ge=1,
        le=1000,
        description=(
            "Events handled at once: a delivery mostly waits (the store, the journal, the "
            "relay), and with 16 the notifier fell 3 s behind the allocator in a burst"
        ),
    )
    smtp_sessions: int = Field(
        default=16,
        ge=1,
        le=1000,
        description=(
            "Mails sent to the relay at once, and SMTP connections kept open between mails "
            "(a relay limits the connections of one client)"
        ),
    )
    send_journal: Path = Field(
        default=Path(".data/notifier/sent-mails.jsonl"),
        description=(
            "Local file of the outcomes of sent messages not recorded yet (one per deployment; "
            "on disk that outlives the process): a notifier killed after a send is not sent "
            "again by its successor"
        ),
    )
    notifier_host: str = Field(
        default="127.0.0.1", description="Address the notifier's internal API listens on"
    )
    notifier_port: int = Field(
        default=8003,
        ge=0,
        le=65535,
        description="Port of the notifier's internal API (0: none; a taken port: none either)",
    )
    reminders: str = Field(
        default="1d,30m",
        description=(
            "How long before a meeting each reminder goes, comma-separated (d, h, m, s): "
            "1d,30m; empty: no reminders"
        ),
    )
    reminder_poll_seconds: float = Field(
        default=15.0, gt=0, le=600, description="How often each notifier looks for due reminders"
    )

    @field_validator("reminders")
    @classmethod
    def _reminders_are_lead_times(cls, value: str) -> str:
        parse_leads(value)
        return value

    def reminder_leads(self) -> tuple[timedelta, ...]:
        return parse_leads(self.reminders)

    webhook_retry_hours: float = Field(
        default=24.0, gt=0, le=24 * 14, description="How long a webhook message is retried"
    )
    webhook_retry_initial_seconds: float = Field(
        default=10.0, gt=0, le=3600, description="The first wait before a webhook retry (doubling)"
    )
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    webhook_allowed_networks: str = Field(
        default="",
        description="CIDR networks (comma-separated) a webhook may reach although internal",
    )
    line_channel_token: SecretStr | None = Field(
        default=None, description="LINE Messaging API channel access token (unset: no LINE)"
    )
    line_api_url: str = Field(default="https://api.line.me", description="LINE API base URL")

    @field_validator("line_channel_token")
    @classmethod
    def _no_empty_token(cls, value: SecretStr | None) -> SecretStr | None:
        """An empty token (``VCS_LINE_CHANNEL_TOKEN=`` in a compose file) means no LINE."""
        return value if value is not None and value.get_secret_value().strip() else None

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _networks(cls, value: str) -> str:
        parse_networks(value)  # a bad entry is named at start, not at the first send
        return value
