"""The services' Prometheus metrics, each defined once, served on an address of its own.

Every service process registers the same names in its own default registry;
the service label comes from the scrape target, not from here. ``/metrics`` is
never on the public address: :func:`serve` binds the address given by
``VCS_METRICS_PORT`` (under ``make run``: 9101 intake, 9102 allocator, 9103
notifier, 9104 desk), and the intake's public app only collects its HTTP
figures (:func:`instrument`).

What an operator of the platform watches, and the alerts in
``deploy/prometheus/alerts.yml``: messages per queue and outcome (dead letters),
the dead letters waiting for a person, the outbox backlog and the age of its
oldest unsent event (the broker or the relay is stuck), allocation latency and
decisions by outcome, deliveries by channel and result, requests not final after
the stuck threshold, and whether the broker and the store are reachable.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

import pymongo
import structlog
from fastapi import FastAPI
from prometheus_client import Counter, Gauge, Histogram, start_http_server
from prometheus_fastapi_instrumentator import Instrumentator
from prometheus_fastapi_instrumentator.middleware import PrometheusInstrumentatorMiddleware
from pymongo import monitoring
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.types import ASGIApp

log = structlog.get_logger(__name__)

MESSAGES = Counter(
    "vcs_messages",
    "Messages taken from a service queue, by what became of them",
    ["queue", "outcome"],  # handled, ignored, requeued, dead_lettered
)
OUTBOX_BACKLOG = Gauge(
    "vcs_outbox_backlog", "Outbox entries stored but not yet published", ["collection"]
)
OUTBOX_OLDEST_AGE = Gauge(
    "vcs_outbox_oldest_unsent_age_seconds",
    "Age of the oldest outbox entry not yet published (0 when none)",
    ["collection"],
)
ALLOCATION_SECONDS = Histogram(
    "vcs_allocation_seconds",
    "From taking request.submitted to its decision being stored",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
DECISIONS = Counter(
    "vcs_decisions",
    "Allocation decisions by outcome (assigned, or the rejection reason)",
    ["outcome"],
)
CLAIM_RACES_LOST = Counter(
    "vcs_claim_races_lost",
    "Claims of a room refused by the slots' unique index: another request held a slot first",
)
DELIVERIES = Counter(
    "vcs_deliveries", "Deliveries to offices by channel and result", ["channel", "result"]
)
ZOOM_PASSCODES = Counter(
    "vcs_zoom_passcodes",
    "Per-booking Zoom passcodes by outcome: planned, applied, withdrawn, kept_standing; "
    "fallbacks: fallback_pool_passcode, fallback_reject (at allocation), fallback_standing "
    "(Zoom failed until the window started)",
    ["outcome"],
)
DEAD_LETTERS = Gauge(
    "vcs_dead_letters",
    "Messages waiting in a dead-letter queue: poison, and what the queue's delivery limit "
    "dead-lettered after its handler kept failing (which no consumer sees); the desk counts them",
    ["queue"],
)
SUBMITS_SHED = Counter(
    "vcs_submits_shed", "Submits refused at once (503) because too many were in flight"
)
STUCK_REQUESTS = Gauge("vcs_requests_stuck", "Requests not final after VCS_STUCK_AFTER_MINUTES")
STORE_COMMANDS = Counter(
    "vcs_store_commands",
    "Commands sent to the store (pymongo command monitoring), by command name and collection",
    ["command", "collection"],
)
BROKER_CONNECTED = Gauge("vcs_broker_connected", "1 while the broker connection is open")
STORE_REACHABLE = Gauge("vcs_store_reachable", "1 while the store answered its last ping")

PING_EVERY = 5.0


class StoreCommandCounter(monitoring.CommandListener):
    """Counts every command the driver sends, by name and collection (the benchmark's
    ``cmds_per_req`` and its breakdown per service)."""

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        STORE_COMMANDS.labels(event.command_name, command_collection(event.command)).inc()

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        return None

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        return None


def command_collection(command: Mapping[str, Any]) -> str:
    """The collection a command works on: the value of its first key (``{"insert": "requests",
    ...}``), ``collection`` for a ``getMore``; empty for commands on no collection (``ping``)."""
    target = command.get("collection") if "getMore" in command else next(iter(command.values()), "")
    return target if isinstance(target, str) else ""


def serve(host: str, port: int | None) -> None:
    """Serves ``/metrics`` of this process on ``host:port`` (a thread of prometheus-client's
    own); a port already taken is logged and the service goes on without metrics."""
    if port is None:
        return
    try:
        start_http_server(port, addr=host)
    except OSError as exc:
        log.error("metrics.unavailable", host=host, port=port, error=str(exc))
        return
    log.info("metrics.listening", host=host, port=port)


def instrument(app: FastAPI) -> None:
    """Counts the app's HTTP requests and their durations (prometheus-fastapi-instrumentator),
    by route template and status class; exposed only through :func:`serve`. The
    instrumentator's own middleware, as it adds it, with :class:`RouteNamesKept` in its place."""
    Instrumentator(excluded_handlers=["/healthz"]).instrument(app)
    app.user_middleware = [
        Middleware(cast(Any, RouteNamesKept), **entry.kwargs)
        if cast(object, entry.cls) is PrometheusInstrumentatorMiddleware
        else entry
        for entry in app.user_middleware
    ]


class RouteNamesKept(PrometheusInstrumentatorMiddleware):
    """The instrumentator's middleware, looking up the route of a path without parameters once.

    Its ``handler`` label is the route template a request matched, found by trying the
    request against every route of the app, every router's included routes flattened anew
    for each request: about two thirds of the instrumentator's cost, which was a fifth of the
    intake's HTTP path per submit. The routes never change once the app is made, so the
    answer for a method, path and root path never changes either; it is kept for the paths
    that are a route's own path (``POST /v1/requests``: a set as small as the routes), and
    looked up each time as before for the rest (paths with ids, unknown paths)."""

    def __init__(self, app: ASGIApp, **options: Any) -> None:
        super().__init__(app, **options)
        self._fixed: dict[tuple[str, str, str], tuple[str, bool]] = {}

    def _get_handler(self, request: Request) -> tuple[str, bool]:
        scope = request.scope
        key = (scope["method"], scope["path"], scope.get("root_path", ""))
        known = self._fixed.get(key)
        if known is not None:
            return known
        handler = super()._get_handler(request)
        if handler == (scope["path"], True):
            self._fixed[key] = handler
        return handler


async def watch_connections(
    broker_connected: Callable[[], bool],
    store_ping: Callable[[], Awaitable[object]],
    stop: asyncio.Event,
    *,
    on_store: Callable[[bool], Awaitable[None]] | None = None,
) -> None:
    """Keeps the connection gauges current until ``stop`` (a service's background loop);
    ``on_store`` hears whether each ping answered."""
    while not stop.is_set():
        BROKER_CONNECTED.set(1 if broker_connected() else 0)
        try:
            with pymongo.timeout(PING_EVERY):  # not a cancellation: see vcs_shared.health
                await store_ping()
            reachable = True
        except Exception:  # any failure to answer means unreachable for the operator
            reachable = False
        STORE_REACHABLE.set(1 if reachable else 0)
        if on_store is not None:
            await on_store(reachable)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=PING_EVERY)
