"""The notifier's webhook and LINE settings: read once, a bad network named at start, and
``make run`` (``vcs run``'s supervisor) passing ``VCS_WEBHOOK_ALLOWED_NETWORKS`` through."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from vcs_notifier.settings import NotifierSettings
from vcs_tools.devstack import service_specs

pytestmark = pytest.mark.unit

REQUIRED = {
    "amqp_url": "amqp://guest:guest@127.0.0.1:5672/",
    "mongodb_url": "mongodb://127.0.0.1:27017",
    "credentials_keys": "k",
    "jwt_secret": "x" * 40,
}


def test_defaults_off_and_24_hours() -> None:
    settings = NotifierSettings(**REQUIRED)  # type: ignore[arg-type]
    assert settings.webhook_retry_hours == 24
    assert settings.webhook_allowed_networks == ""
    assert settings.line_channel_token is None


def test_a_bad_network_is_refused_at_start_naming_it() -> None:
    with pytest.raises(ValidationError, match=re.escape("300.0.0.0/8")):
        NotifierSettings(**REQUIRED, webhook_allowed_networks="10.0.0.0/8,300.0.0.0/8")  # type: ignore[arg-type]


def test_an_empty_line_token_means_no_line() -> None:
    settings = NotifierSettings(**REQUIRED, line_channel_token="  ")  # type: ignore[arg-type]
    assert settings.line_channel_token is None


def test_make_run_passes_the_allowed_networks_through(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VCS_WEBHOOK_ALLOWED_NETWORKS", "10.20.0.0/16")
    [notifier] = service_specs({"VCS_NAMESPACE": "vcs"}, tmp_path, names=("notifier",))
    assert notifier.env["VCS_WEBHOOK_ALLOWED_NETWORKS"] == "10.20.0.0/16"
