"""The journal's cost on the two hot paths, as paired ratios measured in the same run.

Paths: "middleware" (ClicktraceMiddleware in full mode on bare Starlette, an SDK provider
exporting to a sink; requests carry traceparent and x-correlation-id, so each is journaled as
``accepted``), "middleware, 10 % sampled" (the same with nine requests in ten carrying the
browser's not-sampled flag: no span recorded, the journal entry still written) and "bus"
(the traced memory bus: publish inside a click, consume, ack, so each
message is journaled as ``published``, ``delivered`` and ``acked``).

Variants: "no journal code" (the recording sites' ``record`` replaced by a no-op: the code
before the journal), "journal off" (``record`` runs, feeding the metrics API without a
MeterProvider, no journal set), "memory" (the ring, written in place) and "redis" (the
bounded queue and a writer task batching to a real Redis, its flushing counted in the round).
Each round runs every variant in turn and divides its CPU time by "no journal code"'s in the
same round; medians are printed. ``--instructions`` counts instructions per operation under
callgrind instead (load-independent): each variant in its own process, run with 0 and N
operations after the same warm-up.

    .venv/bin/python bench/journal.py [--rounds 15] [--n 2000]
    .venv/bin/python bench/journal.py --instructions [--n 1000] [--jobs 2]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import callgrind  # bench/callgrind.py, beside this script
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message

import clicktrace.asgi.middleware
import clicktrace.bus._base
from clicktrace import context as click_context
from clicktrace.asgi import ClicktraceMiddleware
from clicktrace.bus import MemoryBus
from clicktrace.envelope import Envelope, new_envelope
from clicktrace.ids import new_id
from clicktrace.journal import Journal, MemoryStore, create_store, use

REDIS = "redis://127.0.0.1:6379/0"
HEADERS = [
    (b"host", b"bench"),
    (b"accept", b"application/json"),
    (b"traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    (b"x-correlation-id", b"01JD8X3Q7E8W5V4T2N9R6M0K1A"),
]
SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "POST",
    "scheme": "http",
    "path": "/api/products/7/rename",
    "raw_path": b"/api/products/7/rename",
    "query_string": b"",
    "root_path": "",
    "headers": HEADERS,
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8000),
}
# The recording sites, by the name each calls: the edge hands its commands' parts over.
SITES = ((clicktrace.asgi.middleware, "record_command"), (clicktrace.bus._base, "record"))
NONE, OFF, MEMORY, ON_REDIS = "no journal code", "journal off", "memory", "redis"
VARIANTS = (NONE, OFF, MEMORY, ON_REDIS)
WARM_UP = 200


class _Sink(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _provider() -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(_Sink()))
    return provider


def _no_record(*args: Any, **kwargs: Any) -> None:
    return None


originals: dict[tuple[str, str], Any] = {}
"""Each site's own recording function, kept before the first patch."""


class Variant:
    """Sets the process up as the variant says; ``flush`` ends a round (the writer's work)."""

    def __init__(self, name: str) -> None:
        self.name = name
        prefix = f"ctbench_{new_id().lower()}"
        # Batches of 500, as a served app writes them (its linger gathers that many within
        # 50 ms); under callgrind, 50 ms of wall time would gather only a handful.
        self.journal = (
            Journal(MemoryStore())
            if name == MEMORY
            else Journal(create_store(REDIS, prefix=prefix), linger=60.0)
            if name == ON_REDIS
            else None
        )

    def enter(self) -> None:
        for module, name in SITES:
            key = (module.__name__, name)
            if key not in originals:
                if not hasattr(module, name):  # a site moved: patching would measure nothing
                    raise RuntimeError(f"{module.__name__} no longer records journal entries")
                originals[key] = getattr(module, name)
            setattr(module, name, _no_record if self.name == NONE else originals[key])
        use(self.journal)

    async def flush(self) -> None:
        if self.journal is not None:
            await self.journal.flush()

    async def aclose(self) -> None:
        use(None)
        if self.journal is not None:
            if self.name == ON_REDIS:
                import redis.asyncio as aioredis

                client = aioredis.Redis.from_url(REDIS)
                keys = [k async for k in client.scan_iter(match="ctbench_*")]
                if keys:
                    await client.delete(*keys)
                await client.aclose()
            await self.journal.aclose()


async def _rename(request: Request) -> Response:
    return JSONResponse({"status": "accepted"}, 202)


def middleware_path(sampled_every: int = 1) -> Callable[[int], Awaitable[None]]:
    """``sampled_every=10``: one request in ten carries a sampled traceparent, the others the
    browser's "not sampled" flag (its ``sampleRate`` at 10 %); every one is still journaled."""
    app = ClicktraceMiddleware(
        Starlette(routes=[Route("/api/products/{id}/rename", _rename, methods=["POST"])]),
        tracer_provider=_provider(),
    )
    request: Message = {"type": "http.request", "body": b"", "more_body": False}

    async def receive() -> Message:
        return request

    async def send(message: Message) -> None:
        return None

    # One click per request, as in life (one id for all would hit the per-id cap).
    def headers(i: int) -> list[tuple[bytes, bytes]]:
        flags = b"01" if i % sampled_every == 0 else b"00"
        return [
            *HEADERS[:2],
            (b"traceparent", HEADERS[2][1][:-2] + flags),
            (b"x-correlation-id", new_id().encode()),
        ]

    scopes = [{**SCOPE, "headers": headers(i)} for i in range(4096)]

    async def run(n: int) -> None:
        for i in range(n):
            await app(dict(scopes[i % 4096]), receive, send)

    return run


def bus_path() -> Callable[[int], Awaitable[None]]:
    bus = MemoryBus(tracer_provider=_provider())
    handled = asyncio.Queue[None]()
    topic = "bench"

    async def handler(envelope: Envelope) -> None:
        handled.put_nowait(None)

    bus.subscribe(topic, handler, group="g")
    started = False
    clicks = [click_context.ClickContext(new_id()) for _ in range(4096)]
    tracer = _provider().get_tracer("bench")

    async def run(n: int) -> None:
        nonlocal started
        if not started:
            await bus.start()
            started = True
        with tracer.start_as_current_span("POST"):
            for i in range(n):  # one click per message, as in life
                envelope = new_envelope("Renamed", {"id": 7}, click=clicks[i % 4096])
                await bus.publish(topic, envelope)
                await handled.get()

    return run


PATHS: dict[str, Callable[[], Callable[[int], Awaitable[None]]]] = {
    "middleware": middleware_path,
    "middleware, 10 % sampled": lambda: middleware_path(sampled_every=10),
    "bus": bus_path,
}


async def timed(path: Callable[[int], Awaitable[None]], variant: Variant, n: int) -> float:
    variant.enter()
    start = time.process_time()  # this process's CPU: the machine is shared
    await path(n)
    await variant.flush()
    return time.process_time() - start


async def paired(rounds: int, n: int) -> None:
    variants = [Variant(name) for name in VARIANTS]
    print(f"CPU time, {rounds} rounds x {n} operations, median of paired ratios")
    print("| path | variant | µs/op | vs no journal code |\n|---|---|---:|---:|")
    for path_name, build in PATHS.items():
        path = build()
        for v in variants:
            await timed(path, v, WARM_UP)
        times: dict[str, list[float]] = {v.name: [] for v in variants}
        for _ in range(rounds):
            for v in variants:
                times[v.name].append(await timed(path, v, n))
        for v in variants:
            ratios = [t / b for t, b in zip(times[v.name], times[NONE], strict=True)]
            micros = statistics.median(times[v.name]) / n * 1e6
            print(f"| {path_name} | {v.name} | {micros:.1f} | {statistics.median(ratios):.3f} |")
    for v in variants:
        await v.aclose()


def count(path_name: str, name: str, n: int) -> None:
    """The child of ``--instructions``: one path and variant, warmed up, then ``n`` ops."""

    async def go() -> None:
        variant, path = Variant(name), PATHS[path_name]()
        await timed(path, variant, WARM_UP)
        await timed(path, variant, n)
        # No clean-up here: deleting the keys would be counted too (the parent does it).
        use(None)

    asyncio.run(go())


def instructions(n: int, jobs: int, only: Sequence[str] = VARIANTS) -> None:
    if not callgrind.available():
        print(callgrind.MISSING)
        return
    chosen = [v for v in VARIANTS if v == NONE or v in only]
    runs = [(p, v) for p in PATHS for v in chosen]
    per = callgrind.per_operation(
        __file__, runs, lambda run, k: ["--count", *run, "--n", str(k)], n, jobs
    )
    print(f"instructions (callgrind), {n} operations after {WARM_UP} warm-up, per operation")
    print("| path | variant | instructions/op | over no journal code | vs no journal code |")
    print("|---|---|---:|---:|---:|")
    asyncio.run(Variant(ON_REDIS).aclose())  # the children's Redis keys
    for p in PATHS:
        base = per[p, NONE]
        for v in chosen:
            c = per[p, v]
            print(f"| {p} | {v} | {c:,.0f} | {c - base:,.0f} | {c / base:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--n", type=int, default=2000, help="operations per round / count")
    parser.add_argument("--instructions", action="store_true")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument(
        "--only",
        default=",".join(VARIANTS),
        help="comma-separated variants for --instructions (the baseline always)",
    )
    parser.add_argument("--count", nargs=2, metavar=("PATH", "VARIANT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.count:
        count(args.count[0], args.count[1], args.n)
    elif args.instructions:
        instructions(args.n, args.jobs, args.only.split(","))
    else:
        asyncio.run(paired(args.rounds, args.n))


if __name__ == "__main__":
    main()
