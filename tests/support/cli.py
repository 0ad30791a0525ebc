"""Running the ``vcs`` command as an operator would: its own process, only the given settings."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

VCS = Path(sys.executable).with_name("vcs")


async def vcs(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Runs ``vcs`` with a clean environment: no VCS_* setting leaks in from outside."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VCS_")}
    return await asyncio.to_thread(
        subprocess.run,
        [str(VCS), *args],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def last_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]
