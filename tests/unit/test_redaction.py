"""The log redaction processor: secrets never reach a log line, wherever they hide."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from vcs_shared.logging import REDACTED, configure_logging, redact_secrets, redact_text

pytestmark = pytest.mark.unit


def test_secret_keys_are_redacted_at_any_depth() -> None:
    event = {
        "event": "x",
        "passcode": "p5ucH9TM",
        "room": {"meeting_id": "1213308926", "Password": "hunter2", "inner": [{"token": "abc"}]},
        "headers": {"Authorization": "Bearer eyJhbGciOi.xyz.sig"},
        "sealed_credentials": "gAAAAABl...",
    }

    out = redact_secrets(None, "info", dict(event))

    assert out["passcode"] == REDACTED
    assert out["room"]["Password"] == REDACTED
    assert out["room"]["inner"][0]["token"] == REDACTED
    assert out["headers"]["Authorization"] == REDACTED
    assert out["sealed_credentials"] == REDACTED
    assert out["room"]["meeting_id"] == "1213308926"


def test_passcodes_inside_urls_and_free_text_are_masked() -> None:
    text = (
        "join https://dopa-vcs.zoom.us/j/1213308926?pwd=p5ucH9TM&uname=x "
        "with Bearer abc.def.ghi via amqp://intake:s3cr3t@rabbit:5672/"
    )

    masked = redact_text(text)

    assert "p5ucH9TM" not in masked
    assert "abc.def.ghi" not in masked
    assert "s3cr3t" not in masked
    assert "https://dopa-vcs.zoom.us/j/1213308926?pwd=" in masked
    assert "uname=x" in masked


def test_nested_urls_in_lists_are_masked() -> None:
    out = redact_secrets(
        None, "info", {"urls": ["https://z/j/1?pwd=SECRET1", ("a?token=SECRET2",)]}
    )

    assert "SECRET1" not in json.dumps(out)
    assert "SECRET2" not in json.dumps(out)


@pytest.fixture
def configured_here() -> Iterator[None]:
    """configure_logging binds this test's captured stderr; undo it, or later tests that log
    in this process would write to a closed file."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        structlog.reset_defaults()
        root.handlers, root.level = handlers, level


@pytest.mark.usefixtures("configured_here")
def test_the_configured_pipeline_writes_json_without_the_secret(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("test", json=True)
    structlog.get_logger("t").info(
        "mail.sent",
        join_url="https://z.us/j/123456789?pwd=TopSecret9",
        detail={"pwd": "TopSecret9"},
    )

    line = capsys.readouterr().err.strip().splitlines()[-1]
    record = json.loads(line)
    assert record["event"] == "mail.sent"
    assert record["service"] == "test"
    assert "TopSecret9" not in line
