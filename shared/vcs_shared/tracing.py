"""One trace per request, from its HTTP call through every event about it (OpenTelemetry).

The trace context travels inside each event as the CloudEvents distributed-tracing
extension attribute ``traceparent`` (W3C Trace Context), so it crosses the broker
with the event and survives the outbox: it is written with the event, in the same
store write, and published whenever the relay gets to it. A consumer continues the
trace in a span whose parent is the publisher's span, and what its handler
publishes carries that span on: the events of one request form one chain.

Spans go to an OTLP/HTTP collector when ``VCS_OTLP_ENDPOINT`` names one, and to
nowhere otherwise (they are still made, so logs carry trace ids). Every log line
written inside a span carries ``trace_id`` and ``span_id``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any

from fastapi.telemetry import TelemetryConfig
from opentelemetry import context, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from structlog.typing import EventDict, WrappedLogger

TRACE_ATTRIBUTES = ("traceparent", "tracestate")
_propagator = TraceContextTextMapPropagator()
_tracer = trace.get_tracer("vcs")


def configure_tracing(service: str, otlp_endpoint: str | None) -> TracerProvider:
    """This process's tracer provider; exporting only when an endpoint is configured."""
    provider = TracerProvider(resource=Resource.create({"service.name": f"vcs-{service}"}))
    if otlp_endpoint:
        endpoint = otlp_endpoint.rstrip("/") + "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)
    return provider


def _health_check(scope: MutableMapping[str, Any]) -> bool:
    path: str = scope["path"]
    return path.endswith("/healthz")


HTTP_TELEMETRY: TelemetryConfig = {
    "tracing": True,
    "operation_spans": False,
    "metrics": False,
    "logs": False,
    "auto_configure": False,
    "exclude": _health_check,
}
"""``FastAPI(telemetry=HTTP_TELEMETRY)``: a server span per HTTP request, continuing a caller's
``traceparent`` header, named after its route (``POST /v1/requests``), health checks left out.

FastAPI's own OpenTelemetry layer makes it, on the tracer provider :func:`configure_tracing`
set. It was made by opentelemetry-instrumentation-fastapi before, with FastAPI's layer beside
it switching itself off on every request: two layers doing one job, and the instrumentation's
(its own middleware, a second error middleware, every header read into attributes, the route
looked up again) was about a sixth of the intake's HTTP path per submit. Without a span per
dependency, endpoint and serialisation (``operation_spans``); HTTP metrics are Prometheus's
(:mod:`vcs_shared.metrics`) and errors are logged by the service, so neither goes through
OpenTelemetry; exporters only as :func:`configure_tracing` says, never from ``OTEL_*``
variables (``auto_configure``)."""


def current_trace_attributes() -> dict[str, str]:
    """``traceparent`` (and ``tracestate``) of the current span, for an event being written."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return {key: carrier[key] for key in TRACE_ATTRIBUTES if key in carrier}


@contextmanager
def consuming_span(name: str, attributes: Mapping[str, Any]) -> Iterator[None]:
    """A consumer span for handling one event, child of the span that published it."""
    carrier = {key: str(attributes[key]) for key in TRACE_ATTRIBUTES if attributes.get(key)}
    parent = _propagator.extract(carrier)
    token = context.attach(parent)
    try:
        with _tracer.start_as_current_span(f"handle {name}", kind=trace.SpanKind.CONSUMER):
            yield
    finally:
        context.detach(token)


def add_trace_ids(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: the current span's ids on every line written inside it."""
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        fields: MutableMapping[str, Any] = event_dict
        fields.setdefault("trace_id", format(span.trace_id, "032x"))
        fields.setdefault("span_id", format(span.span_id, "016x"))
    return event_dict
