"""The settings every service reads, once, at its composition root.

Each service subclasses :class:`CommonSettings` (the desk: :class:`ConnectionSettings`) into
its one ``BaseSettings`` class; nothing else in the code reads the environment. Secrets have no
defaults, so a service that was not given them refuses to start instead of
running with a guessable value.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class NamespaceSettings(BaseSettings):
    """Which deployment to act on: the services and the operators' CLI read it alike."""

    model_config = SettingsConfigDict(env_prefix="VCS_", extra="ignore")

    namespace: str = Field(
        default="vcs",
        pattern=r"^[a-z][a-z0-9-]{0,40}$",
        description="Prefix of exchange, queue and database names (tests use their own)",
    )


class ConnectionSettings(NamespaceSettings):
    """What every service needs: its broker user, its store, its logs."""

    amqp_url: SecretStr = Field(description="AMQP URL with this service's own RabbitMQ user")
    mongodb_url: SecretStr = Field(description="MongoDB URL of the store")
    log_json: bool | None = Field(
        default=None, description="JSON logs; by default JSON unless stderr is a terminal"
    )
    log_level: str = "info"
    declare_topology: bool = Field(
        default=True,
        description=(
            "Declare exchanges, queues and bindings at start (needs configure permission). "
            "Set false where deploy/rabbitmq predeclared them: the service then only checks "
            "them passively, which needs no permission"
        ),
    )


class CommonSettings(ConnectionSettings):
    """What the services on the request path (intake, allocator, notifier) need."""

    credentials_keys: SecretStr = Field(
        description=(
            "Comma-separated Fernet keys sealing Zoom credentials on the broker; "
            "the first one seals, all of them open (rotation)"
        )
    )


class TokenSettings(BaseSettings):
    """The signing secret of bearer tokens, for whoever issues or verifies them."""

    model_config = SettingsConfigDict(env_prefix="VCS_", extra="ignore")

    jwt_secret: SecretStr = Field(
        min_length=32,
        description="HMAC secret (32+ bytes) signing office and operator tokens; no default",
    )
