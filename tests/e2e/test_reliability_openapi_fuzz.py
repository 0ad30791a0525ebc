"""schemathesis against the running services' OpenAPI documents: no generated input, valid
or not, gets a 5xx (real broker, real store).

* the intake's own API, with its own document;
* the allocator's admin API through the front door: the allocator's document (read from its
  internal port), every call sent to the intake with a national operator's token, which
  forwards it with an internal token, as operators reach it.

Bounded to a few examples per operation so the run stays short, with a fixed seed so a
failure reproduces (schemathesis prints it too), and one worker: two hit a CPython 3.11.7
bug in schemathesis's threads and made the run flaky.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.auth import national_operator_token
from tests.support.services import StartServices

pytestmark = pytest.mark.e2e

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
MAX_EXAMPLES = 15
SEED = 20261205


async def schemathesis(
    schema: str, *, base_url: str, token: str, cwd: Path, extra: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [
            str(SCHEMATHESIS),
            "run",
            schema,
            "--url",
            base_url,
            "--checks",
            "not_a_server_error",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            str(SEED),
            "--phases",
            "examples,coverage,fuzzing",
            "--generation-database",
            "none",
            "--request-timeout",
            "20",
            "--workers",
            "1",
            "--no-color",
            "-H",
            f"Authorization: Bearer {token}",
            *extra,
        ],
        cwd=cwd,
        env={**os.environ, "SCHEMATHESIS_TELEMETRY": "false"},
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )


def assert_every_operation_passed(done: subprocess.CompletedProcess[str], *, at_least: int) -> None:
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    ran = re.search(r"(\d+) generated, (\d+) passed", done.stdout)
    assert ran is not None, done.stdout[-3000:]
    assert int(ran[1]) == int(ran[2]) > at_least
    operations = re.search(r"Selected: (\d+)/(\d+)\s+Tested: (\d+)", done.stdout)
    assert operations is not None, done.stdout[-3000:]
    assert operations[1] == operations[3]  # every selected operation was exercised


async def test_no_generated_input_gets_a_server_error(
    start_services: StartServices, http: httpx.AsyncClient, intake_url: str, tmp_path: Path
) -> None:
    await start_services("intake")
    probe = await http.get("/healthz")
    assert probe.status_code == 200

    done = await schemathesis(
        f"{intake_url}/openapi.json",
        base_url=intake_url,
        token=national_operator_token(),
        cwd=tmp_path,
    )

    assert_every_operation_passed(done, at_least=50)
    operations = re.search(r"Selected: (\d+)/(\d+)", done.stdout)
    assert operations is not None
    assert operations[1] == operations[2]  # every operation of the document


async def test_the_allocators_admin_api_through_the_front_door_gets_no_server_error(
    start_services: StartServices,
    service_env: dict[str, str],
    intake_url: str,
    tmp_path: Path,
) -> None:
    await start_services("intake", "allocator")
    internal = service_env["VCS_ALLOCATOR_URL"]
    async with httpx.AsyncClient(base_url=internal, timeout=30) as allocator:
        document = (await allocator.get("/openapi.json")).json()
    forwarded = {path for path in document["paths"] if path.startswith("/v1/")}
    assert {"/v1/admin/pools", "/v1/admin/pools/reload", "/v1/admin/reservations"} <= forwarded
    schema = tmp_path / "allocator-openapi.json"
    schema.write_text(json.dumps(document))

    done = await schemathesis(
        str(schema),
        base_url=intake_url,  # the front door, not the allocator's internal port
        token=national_operator_token(),
        cwd=tmp_path,
        extra=("--exclude-path", "/healthz"),  # the allocator's own, not forwarded
    )

    assert_every_operation_passed(done, at_least=30)
    operations = re.search(r"Selected: (\d+)/(\d+)", done.stdout)
    assert operations is not None
    assert int(operations[1]) == len(forwarded)
