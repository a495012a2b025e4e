"""One span's whole cost, SDK vs lean, in instructions (callgrind): the span a request's
middleware opens (four attributes at the start, renamed, two more at the end), through a
SimpleSpanProcessor into an exporter that reads everything an OTLP exporter reads.

    .venv/bin/python bench/spans.py [--instructions] [--spans 3000]

(``--instructions`` names the default mode, as in ``bench/middleware.py``.)

``--memory``: a million spans at a steady rate through a BatchSpanProcessor whose exporter is
slower than the load, for both paths: resident memory as it goes, and the spans the bounded
queue dropped, as the SDK's own processor metrics count them
(``OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED``).

    .venv/bin/python bench/spans.py --memory [--spans 1000000] [--rate 50000]
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from collections.abc import Sequence

import callgrind  # bench/callgrind.py, beside this script
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind

from clicktrace.spans import get_tracer

ATTRIBUTES = {
    "http.request.method": "GET",
    "url.path": "/api/products/7",
    "url.scheme": "http",
    "clicktrace.correlation_id": "01JD8X3Q7E8W5V4T2N9R6M0K1A",
}


class ReadingExporter(SpanExporter):
    """Reads every span as an exporter encoding it would, then drops it."""

    last: tuple[object, ...] = ()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for span in spans:
            for _ in (span.attributes or {}).items():
                pass
            for event in span.events:
                for _ in (event.attributes or {}).items():
                    pass
            for link in span.links:
                for _ in (link.attributes or {}).items():
                    pass
            self.last = (
                span.dropped_attributes,
                span.dropped_events,
                span.dropped_links,
                span.status,
                span.resource,
                span.instrumentation_scope,
                span.parent,
                span.context,
                span.kind,
            )
        return SpanExportResult.SUCCESS


def run(lean: bool, n: int) -> None:
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(ReadingExporter()))
    tracer = get_tracer("bench", tracer_provider=provider, lean=lean)
    for _ in range(200 + n):
        span = tracer.start_span("GET", None, SpanKind.SERVER, ATTRIBUTES)
        span.update_name("GET /api/products/{id}")
        span.set_attributes({"http.response.status_code": 200, "http.route": "/api/products/{id}"})
        span.end()


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class SlowExporter(ReadingExporter):
    """Reads each batch, then takes 20 ms more: at most ~25k spans/s for batches of 512."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        super().export(spans)
        time.sleep(0.02)
        return SpanExportResult.SUCCESS


def memory(lean: bool, n: int, rate: int) -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    os.environ["OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED"] = "true"
    reader = InMemoryMetricReader()
    meters = MeterProvider([reader])
    provider = TracerProvider(meter_provider=meters, shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(SlowExporter(), meter_provider=meters))
    logging.getLogger("opentelemetry.sdk._shared_internal").setLevel(logging.ERROR)
    tracer = get_tracer("bench", tracer_provider=provider, lean=lean)
    batch, marks = 1000, []
    start = time.monotonic()
    for i in range(0, n, batch):
        for _ in range(batch):
            span = tracer.start_span("GET", None, SpanKind.SERVER, ATTRIBUTES)
            span.set_attributes({"http.response.status_code": 200})
            span.end()
        if (i + batch) % (n // 4) == 0:
            marks.append(f"{rss_mb():.1f}")
        ahead = start + (i + batch) / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
    provider.shutdown()
    data = reader.get_metrics_data()
    dropped = exported = 0.0
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name != "otel.sdk.processor.span.processed":
                    continue
                for point in metric.data.data_points:
                    value = float(getattr(point, "value", 0))
                    if point.attributes and point.attributes.get("error.type"):
                        dropped += value
                    else:
                        exported += value
    name = "lean" if lean else "SDK"
    print(f"| {name} | {' → '.join(marks)} | {exported:,.0f} | {dropped:,.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spans", type=int, default=3000)
    parser.add_argument("--instructions", action="store_true", help="the default mode")
    parser.add_argument("--child")
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=int, default=50_000, help="spans/s with --memory")
    args = parser.parse_args()
    if args.memory:
        n = args.spans if args.spans != 3000 else 1_000_000
        print(
            f"{n:,} spans at {args.rate:,}/s, exporter at most ~25k/s; RSS in MiB at each "
            "quarter\n| spans | RSS | exported | dropped (queue full) |\n|---|---|---:|---:|"
        )
        for lean in (True, False):
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--memory-child",
                    "lean" if lean else "sdk",
                    "--spans",
                    str(n),
                    "--rate",
                    str(args.rate),
                ],
                check=True,
            )
        return
    if args.memory_child:
        memory(args.memory_child == "lean", args.spans, args.rate)
        return
    if args.child:
        run(args.child == "lean", args.spans)
        return
    if not callgrind.available():
        print(callgrind.MISSING)
        return
    per = callgrind.per_operation(
        __file__,
        [False, True],
        lambda lean, k: ["--child", "lean" if lean else "sdk", "--spans", str(k)],
        args.spans,
        2,
    )
    print("| span | instructions/span | vs SDK |\n|---|---:|---:|")
    print(f"| SDK | {per[False]:,.0f} | 1.00 |")
    print(f"| lean | {per[True]:,.0f} | {per[True] / per[False]:.2f} |")


if __name__ == "__main__":
    main()
