"""The repo's Node.js programs, run as an integration would run them.

Their npm dependencies come from the committed lock files through
``scripts/ensure-node-deps.sh`` (which ``make test`` runs too; it does nothing when
``node_modules`` matches the lock), so a plain ``pytest`` works on a clean clone.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.paths import ROOT

ASYNCAPI_CHECK = ROOT / "tools" / "asyncapi-check"
NODE_SUBSCRIBER = ROOT / "examples" / "node-subscriber"


def node() -> str:
    found = shutil.which("node")
    assert found, "Node.js is not installed: run scripts/ensure-node-deps.sh (make test does)"
    return found


def with_dependencies(project: Path) -> Path:
    """``project`` with its locked npm dependencies installed."""
    subprocess.run(
        [str(ROOT / "scripts" / "ensure-node-deps.sh"), str(project.relative_to(ROOT))],
        check=True,
        timeout=600,
    )
    return project


@dataclass(frozen=True)
class ParserVerdict:
    """What the official AsyncAPI parser (@asyncapi/parser) said about a document."""

    valid: bool
    diagnostics: list[dict[str, Any]]

    def of_severity(self, *severities: str) -> list[dict[str, Any]]:
        return [d for d in self.diagnostics if d["severity"] in severities]


async def parse_asyncapi(source: str) -> ParserVerdict:
    """Runs ``tools/asyncapi-check`` on a file path or an http(s) URL."""
    project = with_dependencies(ASYNCAPI_CHECK)
    done = await asyncio.to_thread(
        subprocess.run,
        [node(), str(project / "check.mjs"), source],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr
    verdict = json.loads(done.stdout)
    assert verdict["valid"] == (done.returncode == 0)
    return ParserVerdict(valid=verdict["valid"], diagnostics=verdict["diagnostics"])
