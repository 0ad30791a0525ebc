"""``vcs run`` (``make run``): the whole system on this machine until Ctrl-C."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx

from vcs_shared.credentials import new_key
from vcs_tools.devstack import (
    SERVICES,
    EmbeddedStore,
    ServiceProcess,
    SmtpSink,
    service_env,
)

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


def local_secrets(data_dir: Path) -> dict[str, str]:
    """Secrets for the local stack, made once and kept in ``.data/dev.env`` (never in the repo)."""
    path = data_dir / "dev.env"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(f"VCS_CREDENTIALS_KEYS={new_key()}\n", encoding="utf-8")
        path.chmod(0o600)
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def run_local(root: Path, *, port: int = 8000) -> int:
    data_dir = root / ".data"
    started = time.monotonic()
    secrets = local_secrets(data_dir)
    store: EmbeddedStore | None = None
    mongodb_url = os.environ.get("VCS_MONGODB_URL")
    if not mongodb_url:
        store = EmbeddedStore(data_dir / "store").start()
        mongodb_url = store.url
    sink = SmtpSink(folder=data_dir / "mail").start()
    env = service_env(
        amqp_url=os.environ.get("VCS_AMQP_URL", DEFAULT_AMQP_URL),
        mongodb_url=mongodb_url,
        credentials_keys=os.environ.get("VCS_CREDENTIALS_KEYS", secrets["VCS_CREDENTIALS_KEYS"]),
        namespace=os.environ.get("VCS_NAMESPACE", "vcs"),
        smtp_port=sink.port,
        intake_port=port,
        pool_file=root / "deploy" / "pools" / "region-12.csv",
    )
    processes = [ServiceProcess(name, env, data_dir / "logs" / f"{name}.log") for name in SERVICES]
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    code = 0
    try:
        for process in processes:
            process.start()
        if not _wait_healthy(port, processes, stop):
            print("the system did not become healthy; see .data/logs/*.log", flush=True)
            code = 1
        else:
            print(
                f"DOPA VCS is up in {time.monotonic() - started:.1f}s: "
                f"http://127.0.0.1:{port}/docs  (mail: {data_dir / 'mail'}, "
                f"logs: {data_dir / 'logs'}); Ctrl-C stops it",
                flush=True,
            )
            while not stop.wait(0.5):
                dead = [p.name for p in processes if not p.alive()]
                if dead:
                    print(f"stopped unexpectedly: {', '.join(dead)}; see its log", flush=True)
                    code = 1
                    break
    finally:
        print("stopping: finishing in-flight work", flush=True)
        for process in reversed(processes):
            process.stop()
        sink.stop()
        if store is not None:
            store.stop()
    return code


def _wait_healthy(port: int, processes: list[ServiceProcess], stop: threading.Event) -> bool:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not stop.is_set():
        if not all(p.alive() for p in processes):
            return False
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        stop.wait(0.2)
    return False
