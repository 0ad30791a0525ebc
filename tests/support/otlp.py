"""A fake OpenTelemetry collector: a real local HTTP server taking OTLP/HTTP protobuf exports
(``POST /v1/traces``), keeping every span it is sent and counting every connection made to it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


@dataclass(frozen=True, slots=True)
class ReceivedSpan:
    service: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_span_id: str  # "" for a root span


class Collector:
    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.connections = 0
        self._lock = threading.Lock()

    def connected(self) -> None:
        with self._lock:
            self.connections += 1

    def take(self, body: bytes) -> None:
        export = ExportTraceServiceRequest.FromString(body)
        for resource_spans in export.resource_spans:
            service = next(
                a.value.string_value
                for a in resource_spans.resource.attributes
                if a.key == "service.name"
            )
            for scope_spans in resource_spans.scope_spans:
                with self._lock:
                    self.spans.extend(
                        ReceivedSpan(
                            service=service,
                            name=span.name,
                            kind=span.kind,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                        )
                        for span in scope_spans.spans
                    )

    def by_id(self) -> dict[str, ReceivedSpan]:
        with self._lock:
            return {span.span_id: span for span in self.spans}


@contextmanager
def running_collector() -> Iterator[tuple[Collector, str]]:
    """The collector and its base URL (what ``VCS_OTLP_ENDPOINT`` takes)."""
    collector = Collector()

    class Handler(BaseHTTPRequestHandler):
        def setup(self) -> None:  # once per connection, before anything is read from it
            collector.connected()
            super().setup()

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path != "/v1/traces":
                self.send_error(404)
                return
            collector.take(body)
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield collector, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
