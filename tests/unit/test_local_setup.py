"""The local stack's secrets file and the committed RabbitMQ definitions stay what they claim."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.paths import ROOT
from vcs_shared.auth import TokenCodec
from vcs_tools.localrun import local_secrets
from vcs_tools.rabbitmq import SERVICE_USERS, definitions, password_variable

pytestmark = pytest.mark.unit


def test_an_old_dev_env_keeps_its_keys_and_gains_the_token_secret(tmp_path: Path) -> None:
    (tmp_path / "dev.env").write_text("VCS_CREDENTIALS_KEYS=old-key\n")

    first = local_secrets(tmp_path)
    second = local_secrets(tmp_path)

    assert first["VCS_CREDENTIALS_KEYS"] == "old-key"
    assert first == second
    TokenCodec(first["VCS_JWT_SECRET"])
    for service in SERVICE_USERS:
        assert len(first[password_variable(service)]) >= 32
    assert (tmp_path / "dev.env").stat().st_mode & 0o077 == 0


def test_the_committed_definitions_are_the_generated_topology() -> None:
    committed = json.loads((ROOT / "deploy" / "rabbitmq" / "definitions.json").read_text())

    assert committed == definitions("vcs", "/"), (
        "regenerate: uv run python -m vcs_tools.rabbitmq > deploy/rabbitmq/definitions.json"
    )
    queues = {queue["name"]: queue["arguments"] for queue in committed["queues"]}
    assert queues["vcs.allocator"]["x-queue-type"] == "quorum"
    assert queues["vcs.allocator"]["x-delivery-limit"] > 0
    assert queues["vcs.allocator"]["x-dead-letter-exchange"] == "vcs.dead"
    assert "users" not in committed
