"""The README's and the OpenAPI document's example request do not go stale: followed on any
day, they ask for a window the intake accepts (a fixed date was in the past a week later)."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from vcs_intake.domain import BookingRules
from vcs_intake.schemas import SubmitRequest

pytestmark = pytest.mark.unit

README = Path(__file__).resolve().parents[2] / "README.md"
BODY = re.compile(r"<<EOF\n(?P<body>.*?)\nEOF\n", re.DOTALL)
DAY = re.compile(r"^DAY=\$\((?P<command>date [^)]*)\)", re.MULTILINE)


def _accepted_now(body: dict[str, Any]) -> None:
    request = SubmitRequest.model_validate(body)
    now = datetime.now(UTC)
    assert BookingRules().window_problems(request.starts_at, request.ends_at, now) == []


def test_the_readme_example_request_asks_for_a_window_accepted_today() -> None:
    text = README.read_text()
    [day_command] = {m["command"] for m in DAY.finditer(text)}
    day = subprocess.run(
        day_command.split(), capture_output=True, text=True, check=True
    ).stdout.strip()
    bodies = [m["body"] for m in BODY.finditer(text) if '"starts_at"' in m["body"]]

    assert bodies, "the README's example request was not found"
    for body in bodies:
        _accepted_now(json.loads(body.replace("${DAY}", day)))
    literal_times = re.findall(r'"(?:starts|ends)_at": "\d{4}-', text)
    assert literal_times == []  # a fixed date goes stale


def test_the_openapi_example_asks_for_a_window_accepted_today() -> None:
    [example] = SubmitRequest.model_json_schema()["examples"]

    _accepted_now(example)
