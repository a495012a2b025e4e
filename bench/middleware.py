"""The HTTP edge's cost, as paired ratios against bare Starlette measured in the same run.

In-process (default): synthetic ASGI scope/receive/send, no network. Requests carry
traceparent, tracestate and x-correlation-id. Variants run interleaved round by round and each
round's CPU time is divided by bare Starlette's in the same round; the median is printed.

Instructions (``--instructions``): each variant in its own process under valgrind's callgrind,
which counts the instructions executed (all threads, span export included) and so does not
depend on what else the machine runs. Each variant runs twice, with the same warm-up and with
0 and ``--requests`` measured requests; the difference over the number of requests is its
instructions per request, free of start-up and import costs.

HTTP (``--http``): each variant under uvicorn (uvloop + httptools) on loopback, driven by wrk
for a bounded time; prints req/s and the ratio to bare. Without wrk it prints the install hint.

    .venv/bin/python bench/middleware.py [--rounds 15] [--requests 2000] [--http] [--seconds 5]
    .venv/bin/python bench/middleware.py --instructions [--requests 1000] [--jobs 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any, Literal

import callgrind  # bench/callgrind.py, beside this script
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from spans import ReadingExporter  # bench/spans.py, beside this script
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clicktrace.asgi import ClicktraceMiddleware

HEADERS = [
    (b"host", b"bench"),
    (b"user-agent", b"bench/1"),
    (b"accept", b"application/json"),
    (b"traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    (b"tracestate", b"congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"),
    (b"x-correlation-id", b"01JD8X3Q7E8W5V4T2N9R6M0K1A"),
]
SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/api/products/7",
    "raw_path": b"/api/products/7",
    "query_string": b"",
    "root_path": "",
    "headers": HEADERS,
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8000),
}


def sdk_provider() -> TracerProvider:
    provider = TracerProvider()
    # Spans are read as an exporter encoding them would, then dropped.
    provider.add_span_processor(BatchSpanProcessor(ReadingExporter()))
    return provider


async def product(request: Request) -> Response:
    return JSONResponse({"id": int(request.path_params["id"]), "name": "Lamp", "version": 3})


def bare() -> Starlette:
    return Starlette(routes=[Route("/api/products/{id}", product)])


def with_correlation_id() -> ASGIApp:
    from asgi_correlation_id import CorrelationIdMiddleware

    app = bare()
    app.add_middleware(CorrelationIdMiddleware, validator=None)  # ULIDs are not UUIDs
    return app


def with_otel(exclude: list[Literal["receive", "send"]] | None) -> Callable[[], ASGIApp]:
    def build() -> ASGIApp:
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

        app = bare()
        app.add_middleware(
            OpenTelemetryMiddleware, tracer_provider=sdk_provider(), exclude_spans=exclude
        )
        return app

    return build


def with_clicktrace(spans: bool, lean: bool = True) -> Callable[[], ASGIApp]:
    """clicktrace's middleware; ``lean=False`` records its span as an SDK span (the
    ``CLICKTRACE_LEAN_SPANS=0`` setting), the way every release before lean spans did."""

    def build() -> ASGIApp:
        app = bare()
        os.environ["CLICKTRACE_LEAN_SPANS"] = "1" if lean else "0"
        try:
            app.add_middleware(
                ClicktraceMiddleware,
                tracer_provider=sdk_provider() if spans else None,
                client_verifier=None,
                spans=spans,
            )
            app.middleware_stack = app.build_middleware_stack()  # built (and reads it) now
        finally:
            del os.environ["CLICKTRACE_LEAN_SPANS"]
        return app

    return build


def with_sdk_span() -> ASGIApp:
    """Reference: the cost of one SDK span with six attributes, and nothing else."""
    from opentelemetry.trace import SpanKind

    app = bare()
    tracer = sdk_provider().get_tracer("bench")
    attributes = {
        "http.request.method": "GET",
        "url.path": "/api/products/7",
        "url.scheme": "http",
        "clicktrace.correlation_id": "01JD8X3Q7E8W5V4T2N9R6M0K1A",
    }

    async def traced(scope: Scope, receive: Receive, send: Send) -> None:
        span = tracer.start_span("GET", None, SpanKind.SERVER, attributes)
        await app(scope, receive, send)
        span.set_attributes({"http.response.status_code": 200, "http.route": "/api/products/{id}"})
        span.end()

    return traced


def with_sdk_span_as_full() -> ASGIApp:
    """Reference: the same span as clicktrace full asks the SDK for (child of the request's
    remote parent, renamed after routing), built directly, with no propagation around it."""
    from opentelemetry.trace import (
        NonRecordingSpan,
        SpanContext,
        SpanKind,
        TraceFlags,
        set_span_in_context,
    )

    app = bare()
    tracer = sdk_provider().get_tracer("bench")
    parent = set_span_in_context(
        NonRecordingSpan(
            SpanContext(0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7, True, TraceFlags(1))
        )
    )
    attributes = {
        "http.request.method": "GET",
        "url.path": "/api/products/7",
        "url.scheme": "http",
        "clicktrace.correlation_id": "01JD8X3Q7E8W5V4T2N9R6M0K1A",
    }

    async def traced(scope: Scope, receive: Receive, send: Send) -> None:
        span = tracer.start_span("GET", parent, SpanKind.SERVER, attributes)
        await app(scope, receive, send)
        span.update_name("GET /api/products/{id}")
        span.set_attributes({"http.response.status_code": 200, "http.route": "/api/products/{id}"})
        span.end()

    return traced


BARE = "bare starlette"
VARIANTS: dict[str, Callable[[], ASGIApp]] = {
    BARE: bare,
    "asgi-correlation-id": with_correlation_id,
    "otel asgi (default)": with_otel(None),
    "otel asgi (no receive/send spans)": with_otel(["receive", "send"]),
    "clicktrace propagation-only": with_clicktrace(False),
    "clicktrace full": with_clicktrace(True),
    "clicktrace full, SDK spans (CLICKTRACE_LEAN_SPANS=0)": with_clicktrace(True, lean=False),
    "reference: bare + one SDK span, 6 attributes": with_sdk_span,
    "reference: the same span as full opens it (remote parent, renamed)": with_sdk_span_as_full,
}


async def run_batch(app: ASGIApp, n: int) -> float:
    request: Message = {"type": "http.request", "body": b"", "more_body": False}

    async def receive() -> Message:
        return request

    async def send(message: Message) -> None:
        return None

    # CPU time of this process (span-export threads included), not wall time: the machine
    # is shared, and time spent descheduled is not the middleware's cost.
    start = time.process_time()
    for _ in range(n):
        await app(dict(SCOPE), receive, send)
    return time.process_time() - start


async def in_process(rounds: int, n: int) -> None:
    apps = {name: build() for name, build in VARIANTS.items()}
    for app in apps.values():
        await run_batch(app, 200)  # warm-up: imports, caches, first spans
    times: dict[str, list[float]] = {name: [] for name in apps}
    for _ in range(rounds):
        for name, app in apps.items():
            times[name].append(await run_batch(app, n))
    print(f"in-process, {rounds} rounds x {n} requests, median of paired ratios")
    print("| variant | µs/request | vs bare |\n|---|---:|---:|")
    for name, samples in times.items():
        ratios = [t / b for t, b in zip(samples, times[BARE], strict=True)]
        micros = statistics.median(samples) / n * 1e6
        print(f"| {name} | {micros:.1f} | {statistics.median(ratios):.2f} |")


WARM_UP = 200  # requests before measuring: imports, caches, first spans


def run_counted(name: str, n: int) -> None:
    """The child of ``--instructions``: one variant, warmed up, then ``n`` requests."""
    app = VARIANTS[name]()

    async def go() -> None:
        await run_batch(app, WARM_UP)
        await run_batch(app, n)

    asyncio.run(go())


def instructions(n: int, jobs: int, only: str | None) -> None:
    if not callgrind.available():
        print(callgrind.MISSING)
        return
    names = [name for name in VARIANTS if only is None or only in name or name == BARE]
    per_request = callgrind.per_operation(
        __file__, names, lambda name, k: ["--count", name, "--requests", str(k)], n, jobs
    )
    base = per_request[BARE]
    print(f"instructions (callgrind), {n} requests after {WARM_UP} warm-up, per request")
    print("| variant | instructions/request | over bare | vs bare |\n|---|---:|---:|---:|")
    for name, count in per_request.items():
        print(f"| {name} | {count:,.0f} | {count - base:,.0f} | {count / base:.2f} |")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(name: str, port: int) -> None:
    import uvicorn

    uvicorn.run(
        VARIANTS[name](),
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )


def wrk(port: int, seconds: int) -> float:
    args = ["wrk", "-t1", "-c32", f"-d{seconds}s", f"http://127.0.0.1:{port}/api/products/7"]
    for name, value in HEADERS[3:]:
        args += ["-H", f"{name.decode()}: {value.decode()}"]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if match is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    return float(match.group(1))


def over_http(seconds: int, rounds: int) -> None:
    if shutil.which("wrk") is None:
        print("HTTP variant skipped: wrk is missing (apt-get install -y wrk)")
        return
    results: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(rounds):
        for name in VARIANTS:
            port = free_port()
            server = subprocess.Popen(
                [sys.executable, __file__, "--serve", name, "--port", str(port)],
                env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
            )
            try:
                for _ in range(100):
                    try:
                        socket.create_connection(("127.0.0.1", port), 0.1).close()
                        break
                    except OSError:
                        time.sleep(0.05)
                wrk(port, 1)  # warm-up
                results[name].append(wrk(port, seconds))
            finally:
                server.terminate()
                server.wait(10)
    print(f"\nHTTP under uvicorn (uvloop, httptools), wrk -t1 -c32, {rounds} x {seconds}s each")
    print("| variant | req/s | vs bare |\n|---|---:|---:|")
    for name, samples in results.items():
        ratios = [s / b for s, b in zip(samples, results[BARE], strict=True)]
        print(f"| {name} | {statistics.median(samples):.0f} | {statistics.median(ratios):.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument(
        "--requests",
        type=int,
        help="per round (default 2000); per variant with --instructions (1000)",
    )
    parser.add_argument("--http", action="store_true", help="also run the uvicorn variant")
    parser.add_argument("--http-only", action="store_true")
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--http-rounds", type=int, default=2)
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions per request under callgrind instead",
    )
    parser.add_argument("--jobs", type=int, default=2, help="callgrind processes at once")
    parser.add_argument("--only", help="with --instructions: variants whose name contains this")
    parser.add_argument("--count", help=argparse.SUPPRESS)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return
    if args.count:
        run_counted(args.count, args.requests or 0)
        return
    print(
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, Python "
        f"{sys.version.split()[0]}, {os.cpu_count()} cores"
    )
    if args.instructions:
        instructions(args.requests or 1000, args.jobs, args.only)
    elif not args.http_only:
        asyncio.run(in_process(args.rounds, args.requests or 2000))
    if args.http or args.http_only:
        over_http(args.seconds, args.http_rounds)


if __name__ == "__main__":
    main()
