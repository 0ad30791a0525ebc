"""Optional sampling profiles of the burst (``--profile``): py-spy attached to each process by pid.

py-spy is a development dependency; it writes one flame graph per process
(service or embedded store) into ``<results>/profiles``, so where the burst's
time goes can be read without changing any code.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path


@contextlib.contextmanager
def profiled(pids: Mapping[str, int], folder: Path, *, enabled: bool) -> Iterator[None]:
    """Samples every named pid while the block runs (100 Hz); nothing when not enabled."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not enabled:
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    samplers = [
        subprocess.Popen(
            [spy, "record", "--pid", str(pid), "--rate", "100", "--output", f"{folder}/{name}.svg"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, pid in pids.items()
    ]
    try:
        yield
    finally:
        for sampler in samplers:
            sampler.send_signal(signal.SIGINT)
        for sampler in samplers:
            sampler.wait(timeout=60)
