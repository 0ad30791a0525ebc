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

from fastapi import FastAPI
from opentelemetry import context, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
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


def instrument(app: FastAPI) -> None:
    """A server span per HTTP request, continuing a caller's ``traceparent`` header.

    Without the instrumentation's child span for every ASGI ``receive`` and ``send`` (three
    per request, each started, attached and ended): they only time the server reading and
    writing its socket, and making them was about a tenth of the intake's CPU per submit."""
    FastAPIInstrumentor.instrument_app(
        app, excluded_urls="healthz", exclude_spans=["receive", "send"]
    )


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
