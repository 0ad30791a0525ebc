"""``vcs run`` (``make run``) as a supervisor: the real command, its real children, real faults.

* A service, the store or the mail sink SIGKILLed comes back by itself, and the
  requests it held reach a final state, each with one reservation, one
  ``room.assigned`` and one mail; ``/healthz`` counts the restarts.
* A crash loop stops everything with one line; a second ``vcs run`` on the same
  data folder says in one line which process runs and how to stop it.
* A SIGKILLed supervisor leaves nothing behind (its children's sessions empty,
  the port free) and the next run starts; SIGHUP stops a run cleanly.
* Everything under the data folder is for its owner only.

Each run has its own port, data folder and namespace (tests/support/localrun.py).
"""

from __future__ import annotations

import email
import os
import re
import signal
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient

from tests.support.auth import BearerAuth, national_operator_token
from tests.support.faults import count_assignments, spread_request, submit_all, wait_all_final
from tests.support.localrun import LocalRun, local_run_env
from tests.support.processes import in_sessions
from tests.support.tap import EventTap, open_channel
from tests.support.waiting import eventually
from vcs_shared.broker import Topology, declare_topology, delete_topology
from vcs_shared.store import Document
from vcs_shared.supervision import ChildState, SupervisedChild
from vcs_tools.devstack import SERVICES
from vcs_tools.localrun import port_in_use

pytestmark = pytest.mark.e2e

BATCH = 40
SUPERVISED = {"store", "mail", *SERVICES}


@dataclass
class Running:
    """One ``vcs run`` for this module, with a tap on its events and an operator's client."""

    run: LocalRun
    namespace: str
    tap: EventTap
    http: httpx.AsyncClient
    mongo: AsyncMongoClient[Document]

    async def children(self) -> dict[str, SupervisedChild]:
        """What ``/healthz`` says about each supervised process (also while degraded: 503)."""
        body = (await self.http.get("/healthz")).json()
        assert body["supervisor"] is not None, body
        children = body["supervisor"]["children"].items()
        return {name: SupervisedChild.model_validate(child) for name, child in children}

    async def wait_back(self, name: str, restarts: int) -> SupervisedChild:
        async def back() -> SupervisedChild | None:
            try:
                child = (await self.children())[name]
            except httpx.TransportError:
                return None
            running = child.state is ChildState.RUNNING
            return child if running and child.restarts == restarts else None

        return await eventually(back, timeout=60, what=f"{name} restarted {restarts} time(s)")


def office_request(i: int, title: str) -> dict[str, Any]:
    """The i-th request of a batch, spread over four offices of Sakon Nakhon, days and hours."""
    return {**spread_request(i, title=title), "district_code": f"470{1 + i % 4}"}


def mails_by_request(mail_dir: Path) -> Counter[str]:
    """Credentials mails per request id, read from the sink's ``.eml`` files."""
    counts: Counter[str] = Counter()
    for path in mail_dir.glob("*.eml"):
        mail = email.message_from_bytes(path.read_bytes())
        if str(mail["Message-ID"]).startswith("<assigned."):
            counts[str(mail["X-VCS-Request-Id"])] += 1
    return counts


@pytest_asyncio.fixture(scope="module")
async def running(
    tmp_path_factory: pytest.TempPathFactory, amqp_url: str, credentials_keys: str
) -> AsyncIterator[Running]:
    namespace = f"t{uuid.uuid4().hex[:12]}"
    topology = Topology(namespace)
    connection, channel = await open_channel(amqp_url)
    await declare_topology(channel, topology)
    tap = await EventTap.bind(channel, topology.exchange, "#")
    env = local_run_env(amqp_url, namespace, credentials_keys)
    run = LocalRun(tmp_path_factory.mktemp("local-run") / "data", env)
    try:
        run.start()
        await run.wait_up()
        store_url = (run.data_dir / "run.env").read_text().strip().split("=", 1)[1]
        mongo: AsyncMongoClient[Document] = AsyncMongoClient(store_url, tz_aware=True)
        auth = BearerAuth(national_operator_token())
        async with httpx.AsyncClient(base_url=run.url, timeout=30, auth=auth) as http:
            yield Running(run, namespace, tap, http, mongo)
        await mongo.close()
    finally:
        run.stop()
        cleanup = await connection.channel()
        await delete_topology(cleanup, topology)
        await connection.close()


async def test_healthz_shows_every_supervised_process(running: Running) -> None:
    children = await running.children()

    assert set(children) == SUPERVISED
    assert {c.state for c in children.values()} == {ChildState.RUNNING}
    assert {name: c.pid for name, c in children.items()} == running.run.child_pids()
    assert len({c.pid for c in children.values()}) == len(SUPERVISED)


async def test_a_second_run_says_in_one_line_which_runs_and_how_to_stop_it(
    running: Running, tmp_path: Path
) -> None:
    first = running.run
    second = LocalRun(first.data_dir, first.env).start()  # same data folder, another port
    same_port = LocalRun(tmp_path / "other", first.env, port=first.port).start()

    assert await second.wait_exit(timeout=60) == 1
    assert await same_port.wait_exit(timeout=60) == 1

    assert second.lines() == [
        f"vcs run is already running here (pid {first.pid}, {first.url}); "
        f"stop it with Ctrl-C in its terminal, or: kill {first.pid}"
    ]
    assert same_port.lines() == [
        f"port {first.port} is in use by another program: stop it, or choose another port "
        "with --port"
    ]
    assert first.process is not None
    assert first.process.poll() is None  # untouched


async def test_a_killed_allocator_comes_back_by_itself_and_finishes_the_requests_it_held(
    running: Running, request: pytest.FixtureRequest
) -> None:
    before = (await running.children())["allocator"]
    assert before.pid is not None
    decided = ("room.assigned", "request.rejected")
    bodies = [office_request(i, f"supervised {i}") for i in range(BATCH)]
    requests = await submit_all(running.http, bodies)
    await running.tap.wait_for("room.assigned", 1, timeout=60)

    os.kill(before.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    decided_when_killed = sum(len(running.tap.with_prefix(k)) for k in decided)
    back = await running.wait_back("allocator", before.restarts + 1)
    back_after = time.monotonic() - killed_at
    finals = await wait_all_final(running.http, requests, timeout=120)

    assert decided_when_killed < BATCH  # killed mid-way
    assert back.pid not in (None, before.pid)
    assert back.last_exit == "was killed by SIGKILL"
    assert set(finals.values()) == {"delivered"}, finals
    held = await count_assignments(running.mongo, running.namespace, requests)
    assert set(held.values()) == {1}
    event_ids: defaultdict[str, set[str]] = defaultdict(set)
    for message in running.tap.with_prefix("room.assigned"):
        event_ids[message.cloudevent["subject"]].add(message.cloudevent["id"])
    assert {rid: len(event_ids[rid]) for rid in requests} == dict.fromkeys(requests, 1)

    async def all_mailed() -> Counter[str] | None:
        mails = mails_by_request(running.run.data_dir / "mail")
        return mails if all(mails[rid] for rid in requests) else None

    mails = await eventually(all_mailed, timeout=30, what="a mail per request")
    assert {rid: mails[rid] for rid in requests} == dict.fromkeys(requests, 1)
    said = [line for line in running.run.lines() if line.startswith("!! allocator")]
    assert said == [
        f"!! allocator (pid {before.pid}) was killed by SIGKILL: restarting it in 0.5s "
        f"(exit 1 of 5 allowed; log: {running.run.data_dir / 'logs' / 'allocator.log'})"
    ]
    request.node.user_properties += [
        ("decided_before_the_sigkill", decided_when_killed),
        ("allocator_back_after_s", round(back_after, 1)),
    ]


async def test_the_store_and_the_mail_sink_come_back_like_the_services(
    running: Running, request: pytest.FixtureRequest
) -> None:
    before = await running.children()
    for name in ("store", "mail"):
        pid = before[name].pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic()

    store = await running.wait_back("store", before["store"].restarts + 1)
    mail = await running.wait_back("mail", before["mail"].restarts + 1)
    back_after = time.monotonic() - killed_at
    [rid] = await submit_all(running.http, [office_request(BATCH + 1, "after the store")])
    finals = await wait_all_final(running.http, [rid], timeout=90)

    assert finals == {rid: "delivered"}
    assert store.pid != before["store"].pid
    assert mail.pid != before["mail"].pid

    async def mailed() -> bool:
        return mails_by_request(running.run.data_dir / "mail")[rid] == 1

    await eventually(mailed, timeout=30, what="the mail through the restarted sink")
    request.node.user_properties += [("store_and_mail_back_after_s", round(back_after, 1))]


async def test_everything_under_the_data_folder_is_for_its_owner_only(running: Running) -> None:
    [rid] = await submit_all(running.http, [office_request(BATCH + 2, "a passcode mail")])
    await wait_all_final(running.http, [rid], timeout=90)

    async def mailed() -> bool:
        return mails_by_request(running.run.data_dir / "mail")[rid] == 1

    await eventually(mailed, timeout=30, what="the mail file")
    data = running.run.data_dir
    paths = [data, *data.rglob("*")]
    loose = {
        str(p.relative_to(data)): oct(p.stat().st_mode & 0o777)
        for p in paths
        if p.stat().st_mode & 0o077
    }

    assert loose == {}
    names = {p.relative_to(data).parts[0] for p in paths if p != data}
    assert {"dev.env", "store", "mail", "logs", "supervisor.json", "run.lock"} <= names
    assert any(p.suffix == ".eml" for p in (data / "mail").iterdir())
    assert any((data / "store" / "db").iterdir())  # the store's own files, made by nx-27017


@pytest.fixture
def own_namespace(amqp_url: str) -> str:
    return f"t{uuid.uuid4().hex[:12]}"


@pytest_asyncio.fixture
async def cleaned(amqp_url: str, own_namespace: str) -> AsyncIterator[str]:
    """A namespace whose exchanges and queues are removed after the test."""
    yield own_namespace
    connection, channel = await open_channel(amqp_url)
    await delete_topology(channel, Topology(own_namespace))
    await connection.close()


async def test_a_killed_supervisor_leaves_nothing_behind_and_the_next_run_starts(
    tmp_path: Path,
    amqp_url: str,
    credentials_keys: str,
    cleaned: str,
    request: pytest.FixtureRequest,
) -> None:
    env = local_run_env(amqp_url, cleaned, credentials_keys)
    first = LocalRun(tmp_path / "data", env).start()
    runs = [first]
    try:
        await first.wait_up()
        sessions = set(first.child_pids().values())
        assert len(sessions) == len(SUPERVISED)

        assert first.process is not None
        first.process.kill()  # SIGKILL: no chance to stop anything itself
        killed_at = time.monotonic()

        async def nothing_left() -> bool:
            return not in_sessions(sessions) and not port_in_use(first.port)

        await eventually(nothing_left, timeout=30, what="the killed run's children gone")
        gone_after = time.monotonic() - killed_at

        second = LocalRun(first.data_dir, env, port=first.port)
        logs = {name: second.data_dir / "logs" / f"{name}.log" for name in SERVICES}
        offsets = {name: log.stat().st_size for name, log in logs.items()}
        runs.append(second.start())
        await second.wait_up()
        second_sessions = set(second.child_pids().values())
        assert second.process is not None
        second.process.send_signal(signal.SIGHUP)  # its terminal closed

        assert await second.wait_exit(timeout=90) == 0
        assert "stopping (SIGHUP): each service finishes the work in its hands" in second.lines()
        assert second.lines()[-1] == "stopped"
        assert in_sessions(second_sessions) == []
        assert not port_in_use(second.port)
        for name, log in logs.items():  # each stopped gracefully, the store still up for it
            with log.open("rb") as file:
                file.seek(offsets[name])
                assert f'"event": "{name}.stopped"'.encode() in file.read(), name
        request.node.user_properties += [("killed_run_gone_after_s", round(gone_after, 1))]
    finally:
        for run in runs:
            run.stop()


@pytest.mark.timeout(600)  # five starts of a service that fails: slow when the machine is busy
async def test_a_crash_loop_stops_everything_with_one_line(
    tmp_path: Path, amqp_url: str, credentials_keys: str, cleaned: str
) -> None:
    env = {**local_run_env(amqp_url, cleaned, credentials_keys), "VCS_BUFFER_MINUTES": "-1"}
    run = LocalRun(tmp_path / "data", env).start()
    seen: set[int] = set()

    async def ended() -> bool:
        if (run.data_dir / "supervisor.json").exists():
            seen.update(run.child_pids().values())
        assert run.process is not None
        return run.process.poll() is not None

    try:
        await eventually(ended, timeout=500, what="vcs run gave up")
    finally:
        run.stop()

    log = run.data_dir / "logs" / "allocator.log"
    assert run.process is not None
    assert run.process.returncode == 1
    gave_up = [line for line in run.lines() if "gave up" in line]
    assert len(gave_up) == 1, gave_up
    # Which of the two rules says "crash loop" first depends on how fast the machine starts it.
    loop = "(within 60s|in a row without becoming ready)"
    reason = rf"allocator exited 5 times {loop} \(the last time it exited with code 1\)"
    assert re.fullmatch(rf"vcs run gave up: {reason}; see {re.escape(str(log))}", gave_up[0])
    assert run.lines()[-1] == gave_up[0]
    restarts = [line for line in run.lines() if line.startswith("!! allocator")]
    assert [re.sub(r"pid \d+", "pid N", line).split(":")[0] for line in restarts] == [
        "!! allocator (pid N) exited with code 1"
    ] * 4
    assert in_sessions(seen) == []
    assert not port_in_use(run.port)
