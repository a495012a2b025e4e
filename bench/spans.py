"""One span's whole cost, SDK vs lean, in instructions (callgrind): the span a request's
middleware opens (four attributes at the start, renamed, two more at the end), through a
SimpleSpanProcessor into an exporter that reads everything an OTLP exporter reads.

    .venv/bin/python bench/spans.py [--spans 3000]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind

from clicktrace.spans import get_tracer

ATTRIBUTES = {
    "http.request.method": "GET", "url.path": "/api/products/7", "url.scheme": "http",
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
                span.dropped_attributes, span.dropped_events, span.dropped_links, span.status,
                span.resource, span.instrumentation_scope, span.parent, span.context, span.kind,
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


def count(lean: bool, n: int) -> int:
    args = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
            __file__, "--child", "lean" if lean else "sdk", "--spans", str(n)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "PYTHONHASHSEED": "0"}
    done = subprocess.run(args, capture_output=True, text=True, env=env)
    match = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode or match is None:
        raise RuntimeError(done.stderr[-2000:])
    return int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spans", type=int, default=3000)
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        run(args.child == "lean", args.spans)
        return
    runs = [(lean, n) for lean in (False, True) for n in (0, args.spans)]
    with ThreadPoolExecutor(2) as pool:
        totals = dict(zip(runs, pool.map(lambda r: count(*r), runs), strict=True))
    n = args.spans
    per = {lean: (totals[lean, n] - totals[lean, 0]) / n for lean in (False, True)}
    print("| span | instructions/span | vs SDK |\n|---|---:|---:|")
    print(f"| SDK | {per[False]:,.0f} | 1.00 |")
    print(f"| lean | {per[True]:,.0f} | {per[True] / per[False]:.2f} |")


if __name__ == "__main__":
    main()
