"""``vcs run`` as a test starts it: a free port, a data folder and a namespace of its own.

Never port 8000 and never the repo's ``.data``: an engineer's own ``make run`` may use
them. It connects to the system RabbitMQ as guest (``VCS_AMQP_URL`` set, so no broker
users are created) and runs its own embedded store in its data folder.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.auth import TEST_JWT_SECRET
from tests.support.paths import ROOT
from tests.support.waiting import eventually
from vcs_shared.supervision import SupervisorStatus, read_status
from vcs_tools.children import spawn
from vcs_tools.devstack import free_port, internal_apis

VCS = str(Path(sys.executable).with_name("vcs"))


def local_run_env(amqp_url: str, namespace: str, credentials_keys: str) -> dict[str, str]:
    env = {
        **os.environ,
        "VCS_AMQP_URL": amqp_url,
        "VCS_NAMESPACE": namespace,
        "VCS_JWT_SECRET": TEST_JWT_SECRET,
        "VCS_CREDENTIALS_KEYS": credentials_keys,
        **internal_apis(),  # not make run's 8001-8003
    }
    env.pop("VCS_MONGODB_URL", None)  # its own embedded store, supervised like the rest
    return env


@dataclass
class LocalRun:
    data_dir: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    output: Path = field(init=False)
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.output = self.data_dir.parent / f"{self.data_dir.name}-{uuid.uuid4().hex[:8]}.out"

    def start(self) -> LocalRun:
        self.process = spawn(
            [VCS, "run", "--port", str(self.port), "--data-dir", str(self.data_dir)],
            env={**self.env, "PYTHONUNBUFFERED": "1"},
            log_path=self.output,
            cwd=ROOT,
        )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def lines(self) -> list[str]:
        return self.output.read_text().splitlines() if self.output.exists() else []

    def status(self) -> SupervisorStatus:
        status = read_status(self.data_dir / "supervisor.json")
        assert status is not None, "no supervisor status file"
        return status

    def child_pids(self) -> dict[str, int]:
        return {n: c.pid for n, c in self.status().children.items() if c.pid is not None}

    async def wait_up(self, timeout: float = 120) -> None:
        async def up() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"vcs run ended: {self.lines()}")
            return any("is up in" in line for line in self.lines())

        await eventually(up, timeout=timeout, what="vcs run is up")

    async def wait_exit(self, timeout: float = 120) -> int:
        process = self.process
        assert process is not None

        async def ended() -> bool:
            return process.poll() is not None

        await eventually(ended, timeout=timeout, what="vcs run ended")
        return process.returncode

    def stop(self) -> None:
        """Teardown: Ctrl-C's signal, then SIGKILL if it hangs (its children follow it)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
