"""An OTLP/HTTP trace receiver on loopback, for servers a test runs as subprocesses: point
their ``OTEL_EXPORTER_OTLP_ENDPOINT`` at ``endpoint`` and read what they exported."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from clicktrace.testing._ports import free_port
from clicktrace.testing._spans import KINDS, Span

__all__ = ["MAX_BODY_BYTES", "OtlpReceiver"]

MAX_BODY_BYTES = 16 * 1024 * 1024


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


def spans_of(request: ExportTraceServiceRequest) -> list[Span]:
    spans = []
    for resource_spans in request.resource_spans:
        service = next(
            (
                a.value.string_value
                for a in resource_spans.resource.attributes
                if a.key == "service.name"
            ),
            "",
        )
        for scope_spans in resource_spans.scope_spans:
            for s in scope_spans.spans:
                spans.append(
                    Span(
                        trace_id=s.trace_id.hex(),
                        span_id=s.span_id.hex(),
                        parent_span_id=s.parent_span_id.hex(),
                        name=s.name,
                        kind=KINDS.get(s.kind, str(s.kind)),
                        service=service,
                        attributes={a.key: _value(a.value) for a in s.attributes},
                        links=tuple(link.trace_id.hex() for link in s.links),
                    )
                )
    return spans


class OtlpReceiver:
    """``with OtlpReceiver() as otlp:`` serves ``POST {endpoint}/v1/traces`` (protobuf,
    gzip or not) until the block ends; on ``port``, else on :func:`free_port`'s (from
    ``CLICKTRACE_TEST_PORTS`` when it is set)."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        if port is None:
            port = free_port()
        self._spans: list[Span] = []
        self._lock = threading.Lock()
        add = self._add

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                if not 0 <= length <= MAX_BODY_BYTES:
                    self.send_error(413)
                    return
                body = self.rfile.read(length)
                try:
                    if self.headers.get("content-encoding") == "gzip":
                        body = gzip.decompress(body)
                    request = ExportTraceServiceRequest()
                    request.ParseFromString(body)
                except Exception:  # a broken export is the exporter's bug: say 400
                    self.send_error(400)
                    return
                add(spans_of(request))
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        """The base URL, as ``OTEL_EXPORTER_OTLP_ENDPOINT`` wants it."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def _add(self, spans: Sequence[Span]) -> None:
        with self._lock:
            self._spans.extend(spans)

    def spans(self, trace_id: str | None = None) -> list[Span]:
        with self._lock:
            return [s for s in self._spans if trace_id is None or s.trace_id == trace_id]

    def wait_for(self, ready: Callable[[list[Span]], bool], timeout: float = 15.0) -> list[Span]:
        """Every span received, once ``ready(spans)`` holds or ``timeout`` seconds passed
        (exporters batch: the last spans come a moment after the click settles)."""
        deadline = time.monotonic() + timeout
        spans = self.spans()
        while not ready(spans) and time.monotonic() < deadline:
            time.sleep(0.05)
            spans = self.spans()
        return spans

    def clear(self) -> None:
        with self._lock:
            self._spans.clear()

    def __enter__(self) -> OtlpReceiver:
        self._thread.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
