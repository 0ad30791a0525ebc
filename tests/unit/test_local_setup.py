"""The local stack's secrets file and the committed RabbitMQ definitions stay what they claim."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.support.paths import ROOT
from vcs_shared.auth import TokenCodec
from vcs_tools.localrun import local_secrets
from vcs_tools.mailsink import KeepMail
from vcs_tools.private_files import append_text, private_dir, replace_text
from vcs_tools.rabbitmq import SERVICE_USERS, definitions, password_variable
from vcs_tools.supervisor import RestartPolicy

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
    for shard in range(8):  # the allocator's queue, split by province
        assert queues[f"vcs.allocator.{shard}"]["x-queue-type"] == "quorum"
        assert queues[f"vcs.allocator.{shard}"]["x-single-active-consumer"] is True
        assert queues[f"vcs.allocator.{shard}"]["x-delivery-limit"] > 0
        assert queues[f"vcs.allocator.{shard}"]["x-dead-letter-exchange"] == "vcs.dead"
        assert queues[f"vcs.allocator.{shard}"]["x-dead-letter-routing-key"] == "vcs.allocator"
    assert "vcs.allocator" not in queues
    assert queues["vcs.notifier"]["x-queue-type"] == "quorum"
    assert "x-single-active-consumer" not in queues["vcs.notifier"]
    assert "users" not in committed


@pytest.fixture
def no_chmod_and_an_open_umask(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Any mode must come from the call that creates the file: with umask 0 a file created
    with the default mode would be 0666, and a chmod after creation fails the test."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"chmod after creation: {args}")

    for name in ("chmod", "fchmod", "lchmod"):
        monkeypatch.setattr(os, name, refuse, raising=False)
    monkeypatch.setattr(Path, "chmod", refuse)
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def _modes(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root.parent)): oct(path.stat().st_mode & 0o777)
        for path in [root, *root.rglob("*")]
    }


@pytest.mark.usefixtures("no_chmod_and_an_open_umask")
def test_data_files_are_created_for_their_owner_only(tmp_path: Path) -> None:
    data = tmp_path / "fresh" / ".data"
    local_secrets(data)
    with append_text(private_dir(data / "logs") / "intake.log") as log:
        log.write("{}\n")
    replace_text(data / "supervisor.json", "{}")
    envelope = SimpleNamespace(original_content=b"Subject: passcode\r\n\r\n123456\r\n")
    asyncio.run(KeepMail(data / "mail").handle_DATA(None, None, envelope))  # type: ignore[arg-type]

    modes = _modes(data)

    assert set(modes) == {
        ".data",
        ".data/dev.env",
        ".data/logs",
        ".data/logs/intake.log",
        ".data/supervisor.json",
        ".data/mail",
        *(f".data/mail/{p.name}" for p in (data / "mail").glob("*.eml")),
    }
    assert len(list((data / "mail").glob("*.eml"))) == 1
    folders = {name: mode for name, mode in modes.items() if (data.parent / name).is_dir()}
    files = {name: mode for name, mode in modes.items() if name not in folders}
    assert set(folders.values()) == {"0o700"}, folders
    assert set(files.values()) == {"0o600"}, files
    assert oct((tmp_path / "fresh").stat().st_mode & 0o777) == "0o700"  # made on the way too


def test_restarts_back_off_by_doubling_up_to_a_ceiling() -> None:
    policy = RestartPolicy(first_delay=0.5, max_delay=8.0)

    assert [policy.delay(n) for n in range(1, 8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
