"""The settings every service reads, once, at its composition root.

Each service subclasses :class:`CommonSettings` into
its one ``BaseSettings`` class; nothing else in the code reads the environment. Secrets have no
defaults, so a service that was not given them refuses to start instead of
running with a guessable value, and one still holding an example value
(``deploy/compose.env.example``'s ``change-me``) refuses too.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from vcs_shared.broker_nodes import broker_urls

EXAMPLE_SECRET = "change-me"
"""What deploy/compose.env.example puts where a secret goes; never a real one."""


class RefusesExampleSecrets(BaseSettings):
    """Settings whose secrets may not be left at an example value.

    A copied example file runs fine and looks configured, so the mistake would only show
    when someone guesses the secret: every secret field (and every URL carrying a password
    made from one) is checked at start, and the setting is named in the error. Errors never
    repeat the input, which holds the secrets.
    """

    model_config = SettingsConfigDict(hide_input_in_errors=True)

    @model_validator(mode="after")
    def _no_example_secrets(self) -> Self:
        left = [
            name
            for name, value in self
            if isinstance(value, SecretStr) and EXAMPLE_SECRET in value.get_secret_value().lower()
        ]
        if left:
            prefix = str(self.model_config.get("env_prefix", ""))
            names = ", ".join(f"{prefix}{name}".upper() for name in left)
            raise ValueError(
                f"the example value {EXAMPLE_SECRET!r} is still set in {names}: "
                "set a real secret (deploy/compose.env.example says how to make one)"
            )
        return self


class NamespaceSettings(RefusesExampleSecrets):
    """Which deployment to act on: the services and the operators' CLI read it alike."""

    model_config = SettingsConfigDict(env_prefix="VCS_", extra="ignore")

    namespace: str = Field(
        default="vcs",
        pattern=r"^[a-z][a-z0-9-]{0,40}$",
        description="Prefix of exchange, queue and database names (tests use their own)",
    )


class ConnectionSettings(NamespaceSettings):
    """What every service needs: its broker user, its store, its logs."""

    amqp_url: SecretStr = Field(
        description=(
            "AMQP URL with this service's own RabbitMQ user; the nodes of a cluster as a "
            "comma-separated list (the service moves to the next one when its node goes)"
        )
    )
    mongodb_url: SecretStr = Field(description="MongoDB URL of the store")
    log_json: bool | None = Field(
        default=None, description="JSON logs; by default JSON unless stderr is a terminal"
    )
    log_level: str = "info"
    metrics_host: str = Field(default="127.0.0.1", description="Where /metrics listens")
    otlp_endpoint: str | None = Field(
        default=None,
        description=(
            "OTLP/HTTP collector base URL (e.g. http://127.0.0.1:4318) for the traces; "
            "unset: spans go nowhere"
        ),
    )
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description=(
            "Port of this service's Prometheus /metrics, never the public one "
            "(make run: 9101 intake, 9102 allocator, 9103 notifier, 9104 desk); unset: none"
        ),
    )
    declare_topology: bool = Field(
        default=True,
        description=(
            "Declare exchanges, queues and bindings at start (needs configure permission). "
            "Set false where deploy/rabbitmq predeclared them: the service then only checks "
            "them passively, which needs no permission"
        ),
    )

    @field_validator("amqp_url")
    @classmethod
    def _amqp_urls(cls, value: SecretStr) -> SecretStr:
        """One AMQP URL, or the nodes of a cluster separated by commas."""
        broker_urls(value.get_secret_value())
        return value


class CommonSettings(ConnectionSettings):
    """What the services that seal or open credentials and contacts need (intake, allocator,
    notifier; the desk opens the contact of a request that asks for staff)."""

    credentials_keys: SecretStr = Field(
        description=(
            "Comma-separated Fernet keys sealing Zoom credentials on the broker; "
            "the first one seals, all of them open (rotation)"
        )
    )


class StuckSettings(BaseSettings):
    """``VCS_STUCK_AFTER_MINUTES``, read alike by the intake's watch and the desk's list of stuck
    requests (:func:`vcs_shared.request_status.is_stuck`), so both call the same requests stuck."""

    model_config = SettingsConfigDict(env_prefix="VCS_", extra="ignore")

    stuck_after_minutes: float = Field(
        default=10,
        gt=0,
        description=(
            "A request not final (still submitted or assigned) this long after it was "
            "submitted is stuck: logged as an error once (`request.stuck`), listed by "
            "`GET /v1/admin/requests?stuck=true`"
        ),
    )

    @property
    def stuck_after(self) -> timedelta:
        return timedelta(minutes=self.stuck_after_minutes)


class TokenSettings(RefusesExampleSecrets):
    """The signing secret of bearer tokens, for whoever issues or verifies them."""

    model_config = SettingsConfigDict(env_prefix="VCS_", extra="ignore")

    jwt_secret: SecretStr = Field(
        min_length=32,
        description="HMAC secret (32+ bytes) signing office and operator tokens; no default",
    )
