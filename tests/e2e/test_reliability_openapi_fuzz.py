"""schemathesis against the intake's own OpenAPI document: no generated input, valid or not,
gets a 5xx from a running intake (real broker, real store).

Bounded to a few examples per operation so the run stays short; every run draws new
inputs (schemathesis prints the seed that reproduces a failure).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.services import StartServices

pytestmark = pytest.mark.e2e

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
MAX_EXAMPLES = 15


async def test_no_generated_input_gets_a_server_error(
    start_services: StartServices, http: httpx.AsyncClient, intake_url: str, tmp_path: Path
) -> None:
    await start_services("intake")
    probe = await http.get("/healthz")  # shows the credentials the test client sends, if any
    assert probe.status_code == 200
    headers = [
        arg
        for name in ("authorization",)
        if name in probe.request.headers
        for arg in ("-H", f"{name}: {probe.request.headers[name]}")
    ]

    done = await asyncio.to_thread(
        subprocess.run,
        [
            str(SCHEMATHESIS),
            "run",
            f"{intake_url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--phases",
            "examples,coverage,fuzzing",
            "--generation-database",
            "none",
            "--request-timeout",
            "20",
            "--workers",
            "2",
            "--no-color",
            *headers,
        ],
        cwd=tmp_path,
        env={**os.environ, "SCHEMATHESIS_TELEMETRY": "false"},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )

    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    ran = re.search(r"(\d+) generated, (\d+) passed", done.stdout)
    assert ran is not None, done.stdout[-3000:]
    assert int(ran[1]) == int(ran[2]) > 50
    operations = re.search(r"Selected: (\d+)/(\d+)\s+Tested: (\d+)", done.stdout)
    assert operations is not None, done.stdout[-3000:]
    assert operations[1] == operations[2] == operations[3]  # every operation was exercised
