"""Fixtures shared by every tier: real RabbitMQ, the real store, real local servers.

A set ``VCS_MONGODB_URL`` (or ``VCS_AMQP_URL``) wins, so the same suite runs
against a real MongoDB; otherwise an ``nx-27017`` server is started for the
session. Every test gets its own namespace: its own exchange, queues and
databases, removed afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient

from tests.support.auth import TEST_JWT_SECRET, BearerAuth, national_operator_token
from tests.support.events import TEST_CREDENTIALS_KEYS
from tests.support.forkserver import ForkServers
from tests.support.paths import SAMPLE_POOL
from tests.support.services import StartServices
from tests.support.tap import EventTap, open_channel
from tests.support.zoom_fake import FakeZoom
from vcs_shared.broker import declare_topology, delete_topology
from vcs_shared.store import Document, database_name
from vcs_shared.topology import Topology
from vcs_tools.devstack import (
    SERVICES,
    EmbeddedStore,
    ServiceProcess,
    SmtpSink,
    free_port,
    internal_apis,
)
from vcs_tools.devstack import service_env as make_service_env

# The headless-Chromium fixture of the page tests.
pytest_plugins = ["tests.support.browser"]


@pytest.fixture(scope="session")
def amqp_url() -> str:
    return os.environ.get("VCS_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


@pytest.fixture(scope="session")
def mongodb_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("VCS_MONGODB_URL")
    if url:
        yield url
        return
    store = EmbeddedStore(tmp_path_factory.mktemp("nx-27017")).start()
    try:
        yield store.url
    finally:
        store.stop()


@pytest.fixture(scope="session")
def credentials_keys() -> str:
    return TEST_CREDENTIALS_KEYS


@pytest.fixture
def namespace() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def topology(namespace: str) -> Topology:
    return Topology(namespace)


@pytest_asyncio.fixture
async def mongo(mongodb_url: str, namespace: str) -> AsyncIterator[AsyncMongoClient[Document]]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_url, tz_aware=True)
    try:
        yield client
    finally:
        for service in SERVICES:
            await client.drop_database(database_name(namespace, service))
        await client.close()


@pytest_asyncio.fixture
async def broker(amqp_url: str, topology: Topology) -> AsyncIterator[Any]:
    """A channel in a namespace whose topology is declared, and deleted after the test."""
    connection, channel = await open_channel(amqp_url)
    await declare_topology(channel, topology)
    try:
        yield channel
    finally:
        cleanup = await connection.channel()
        await delete_topology(cleanup, topology)
        await connection.close()


@pytest_asyncio.fixture
async def tap(broker: Any, topology: Topology) -> EventTap:
    """Everything published on the namespace's events exchange (bound with ``#``)."""
    return await EventTap.bind(broker, topology.exchange, "#")


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture
def zoom() -> Iterator[FakeZoom]:
    """The fake Zoom API (a real local HTTP server) knowing the test account's OAuth app."""
    server = FakeZoom().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def service_env(
    amqp_url: str,
    mongodb_url: str,
    credentials_keys: str,
    namespace: str,
    smtp_sink: SmtpSink,
    tmp_path: Path,
) -> dict[str, str]:
    return make_service_env(
        amqp_url=amqp_url,
        mongodb_url=mongodb_url,
        credentials_keys=credentials_keys,
        jwt_secret=TEST_JWT_SECRET,
        namespace=namespace,
        smtp_port=smtp_sink.port,
        intake_port=free_port(),
        pool_file=SAMPLE_POOL,
        extra={**internal_apis(), "VCS_SEND_JOURNAL": tmp_path / "notifier" / "sent-mails.jsonl"},
    )


@pytest.fixture(scope="session")
def fork_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForkServers]:
    """Where :func:`start_services` forks services from (tests/support/forkserver.py)."""
    servers = ForkServers(tmp_path_factory.mktemp("forkservers"))
    try:
        yield servers
    finally:
        servers.stop()


@pytest_asyncio.fixture
async def start_services(
    service_env: dict[str, str], broker: Any, tmp_path: Path, fork_servers: ForkServers
) -> AsyncIterator[StartServices]:
    """Starts service processes and waits until each consumes (and the intake answers);
    each is forked from a warm parent that imported it once for the whole session."""
    started: list[ServiceProcess] = []

    async def start(*names: str, extra_env: dict[str, str] | None = None) -> list[ServiceProcess]:
        env = {**service_env, **(extra_env or {})}
        processes = []
        for name in names or SERVICES:
            log_path = tmp_path / "logs" / f"{name}-{len(started)}.log"
            process = ServiceProcess(name, env, log_path, fork_servers.launch).start()
            started.append(process)
            processes.append(process)
        for process in processes:
            await process.wait_ready(within=60)
        return processes

    try:
        yield start
    finally:
        for process in reversed(started):
            process.stop()


@pytest.fixture
def intake_url(service_env: dict[str, str]) -> str:
    return f"http://127.0.0.1:{service_env['VCS_PORT']}"


@pytest_asyncio.fixture
async def http(intake_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client authenticated as a test-only operator of all 77 provinces (tests/support/auth)."""
    auth = BearerAuth(national_operator_token())
    async with httpx.AsyncClient(base_url=intake_url, timeout=30, auth=auth) as client:
        yield client
