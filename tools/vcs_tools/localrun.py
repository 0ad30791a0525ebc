"""``vcs run`` (``make run``): the whole system on this machine until Ctrl-C."""

from __future__ import annotations

import os
import secrets
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import aio_pika
import httpx

from vcs_shared.credentials import new_key
from vcs_tools.devstack import (
    SERVICES,
    EmbeddedStore,
    ServiceProcess,
    SmtpSink,
    service_env,
)
from vcs_tools.rabbitmq import SERVICE_USERS, local_service_urls, password_variable

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


LOCAL_SECRETS: dict[str, Callable[[], str]] = {
    "VCS_CREDENTIALS_KEYS": new_key,
    "VCS_JWT_SECRET": lambda: secrets.token_urlsafe(48),
    **{password_variable(s): lambda: secrets.token_hex(24) for s in SERVICE_USERS},
}


def local_secrets(data_dir: Path) -> dict[str, str]:
    """Secrets for the local stack, made once and kept in ``.data/dev.env`` (never in the repo).

    A secret added to the project later is appended to an existing file, so an old
    ``.data`` keeps its keys (and what they sealed) and gains the new one.
    ``vcs token issue`` reads the same file to sign tokens the local intake accepts.
    """
    path = data_dir / "dev.env"
    data_dir.mkdir(parents=True, exist_ok=True)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    known = {key.strip(): value.strip() for key, value in pairs}
    missing = {key: make() for key, make in LOCAL_SECRETS.items() if key not in known}
    if missing:
        with path.open("a", encoding="utf-8") as file:
            file.writelines(f"{key}={value}\n" for key, value in missing.items())
        path.chmod(0o600)
    return {**known, **missing}


def run_local(root: Path, *, port: int = 8000) -> int:
    data_dir = root / ".data"
    started = time.monotonic()
    local = local_secrets(data_dir)
    store: EmbeddedStore | None = None
    mongodb_url = os.environ.get("VCS_MONGODB_URL")
    run_env = data_dir / "run.env"
    if not mongodb_url:
        store = EmbeddedStore(data_dir / "store").start()
        mongodb_url = store.url
        run_env.write_text(f"VCS_MONGODB_URL={mongodb_url}\n", encoding="utf-8")
    sink = SmtpSink(folder=data_dir / "mail").start()
    env = service_env(
        amqp_url=os.environ.get("VCS_AMQP_URL", DEFAULT_AMQP_URL),
        mongodb_url=mongodb_url,
        credentials_keys=os.environ.get("VCS_CREDENTIALS_KEYS", local["VCS_CREDENTIALS_KEYS"]),
        jwt_secret=os.environ.get("VCS_JWT_SECRET", local["VCS_JWT_SECRET"]),
        namespace=os.environ.get("VCS_NAMESPACE", "vcs"),
        smtp_port=sink.port,
        intake_port=port,
        pool_file=root / "deploy" / "pools" / "region-12.csv",
    )
    own_users = {} if "VCS_AMQP_URL" in os.environ else _service_users(root, local, env)
    processes = [
        ServiceProcess(name, {**env, **own_users.get(name, {})}, data_dir / "logs" / f"{name}.log")
        for name in SERVICES
    ]
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
            run_env.unlink(missing_ok=True)
    return code


def _service_users(
    root: Path, local: dict[str, str], env: dict[str, str]
) -> dict[str, dict[str, str]]:
    """Each service as its own least-privilege RabbitMQ user, when this broker allows it
    (root and rabbitmqctl on this machine); otherwise all of them as guest."""
    try:
        urls = local_service_urls(root, DEFAULT_AMQP_URL, env["VCS_NAMESPACE"], local)
    except (aio_pika.exceptions.AMQPError, OSError, RuntimeError) as exc:
        print(f"RabbitMQ users not set up ({exc!r}); the services connect as guest", flush=True)
        return {}
    if urls is None:
        print(
            "RabbitMQ: per-service users need root and rabbitmqctl on this machine; "
            "the services connect as guest",
            flush=True,
        )
        return {}
    return {
        name: {"VCS_AMQP_URL": url, "VCS_DECLARE_TOPOLOGY": "false"} for name, url in urls.items()
    }


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
