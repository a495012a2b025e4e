"""What anonymous ``/clicktrace/health`` pollers cost a node's command throughput, paired.

One uvicorn node (uvloop, httptools) serves an app wired by ``clicktrace.install`` with a
memory bus, a projection that confirms every command, a journal and an SDK tracer provider;
its command route publishes one event per request. A load generator in this process sends
commands over ``--connections`` keep-alive connections, as fast as the node answers, for
``--seconds``; in another phase a second process runs ``--pollers`` anonymous pollers
meanwhile, each sending ``GET /clicktrace/health`` again as soon as the last answer came.
A third phase polls a constant answer served in front of everything instead (``/bench/floor``):
the least any endpoint costs under this server, i.e. what the pollers themselves cost. The
phases rotate round by round so drift falls on each; the median of the per-round ratios
(with pollers / without) is printed. The generators speak raw HTTP/1.1 on asyncio streams, so
they cost the machine little beside the node. ``--every`` paces each poller (seconds between
an answer and its next poll; 0, the default, asks again at once).

On a shared machine the throughput swings with whatever else runs; the node's own CPU time per
command (``/proc/<pid>/stat``, polls included) does not, so its ratio (capacity with pollers /
without) is printed beside it: the share of the node left for commands.

    .venv/bin/python bench/health.py [--rounds 6] [--seconds 3] [--pollers 20] [--every 0]
        [--journal memory://|redis://127.0.0.1:6379/0]

Run it against another checkout's SDK with ``PYTHONPATH=/other/py_sdk``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from starlette.types import Receive, Scope, Send

COMMAND_PATH = "/api/rename"
HEALTH = "/clicktrace/health"
# The reference: a constant answer in front of everything, the least any endpoint can cost
# under this server (what the pollers cost whatever the health endpoint does).
FLOOR = "/bench/floor"
FLOOR_BODY = b'{"status":"Healthy"}'
FLOOR_HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"20")]
TOPIC = "bench-products"


# --- the node -------------------------------------------------------------------------------


def serve(port: int, journal_url: str, prefix: str) -> None:
    import uvicorn
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from spans import ReadingExporter  # bench/spans.py, beside this script
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    import clicktrace
    from clicktrace import Envelope, MemoryBus, Notifier, TokenSigner, confirm, new_envelope
    from clicktrace.commands import accepted
    from clicktrace.journal import create_journal
    from clicktrace.notify import WebSocketTransport

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(ReadingExporter()))
    bus = MemoryBus()
    notifier = Notifier(TokenSigner(b"bench-secret-0123456789abcdef"), WebSocketTransport())

    async def project(envelope: Envelope) -> None:
        await confirm(notifier.notify, envelope, data=envelope.payload)

    bus.subscribe(TOPIC, project, group="projection")

    async def rename(request: Request) -> Response:
        body = await request.json()
        await bus.publish(TOPIC, new_envelope("ProductRenamed", {"name": body["name"]}))
        return accepted()

    options: dict[str, Any] = {"prefix": prefix} if journal_url.startswith("redis") else {}
    app = clicktrace.install(
        Starlette(routes=[Route(COMMAND_PATH, rename, methods=["POST"])]),
        notifier=notifier,
        bus=bus,
        tracer_provider=provider,
        journal=create_journal(journal_url, **options),
    )

    async def node(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == FLOOR:
            await send({"type": "http.response.start", "status": 200, "headers": FLOOR_HEADERS})
            await send({"type": "http.response.body", "body": FLOOR_BODY})
        else:
            await app(scope, receive, send)

    uvicorn.run(
        node,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )


# --- raw HTTP/1.1 clients -------------------------------------------------------------------


@asynccontextmanager
async def connection(port: int) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield reader, writer
    finally:
        writer.close()


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes) -> int:
    """Sends one request, reads its whole answer, returns the status code."""
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


def command_request(correlation_id: str) -> bytes:
    body = b'{"name": "Cup"}'
    return (
        f"POST {COMMAND_PATH} HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\n"
        f"x-correlation-id: {correlation_id}\r\ncontent-length: {len(body)}\r\n\r\n"
    ).encode() + body


def get_request(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nhost: bench\r\n\r\n".encode()


async def commands(port: int, connections: int, seconds: float) -> float:
    """Commands per second answered 202 over ``connections`` closed-loop connections."""
    from clicktrace.ids import new_id

    done = 0
    stop = time.monotonic() + seconds

    async def one() -> None:
        nonlocal done
        async with connection(port) as (reader, writer):
            while time.monotonic() < stop:
                if await exchange(reader, writer, command_request(new_id())) != 202:
                    raise RuntimeError("a command was not accepted")
                done += 1

    started = time.monotonic()
    await asyncio.gather(*(one() for _ in range(connections)))
    return done / (time.monotonic() - started)


async def poll(port: int, pollers: int, path: str, every: float) -> None:
    """Runs ``pollers`` pollers of ``path`` until SIGTERM, each asking again ``every`` seconds
    after its last answer (0: at once), then prints how many answers came (and of which
    status) per second. Prints ``ready`` once every poller had an answer."""
    request = get_request(path)
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stopped.set)
    answers: dict[int, int] = {}
    first = asyncio.Barrier(pollers + 1)

    async def one() -> None:
        async with connection(port) as (reader, writer):
            status = await exchange(reader, writer, request)
            answers[status] = answers.get(status, 0) + 1
            await first.wait()
            while not stopped.is_set():
                status = await exchange(reader, writer, request)
                answers[status] = answers.get(status, 0) + 1
                if every:
                    await asyncio.sleep(every)

    tasks = [asyncio.create_task(one()) for _ in range(pollers)]
    await first.wait()
    print("ready", flush=True)
    started = time.monotonic()
    await stopped.wait()
    took = time.monotonic() - started
    await asyncio.gather(*tasks)
    print(" ".join(f"{status}:{n / took:.0f}/s" for status, n in sorted(answers.items())))


# --- the paired run -------------------------------------------------------------------------


def _wait_for_port(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the node exited with {server.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the node did not start within 30 s")


def _child(*args: str) -> list[str]:
    return [sys.executable, __file__, *args]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Phase:
    def __init__(self, node: int) -> None:
        self.node = node

    async def run(self, port: int, connections: int, seconds: float) -> tuple[float, float]:
        """Commands per second, and the node's CPU microseconds per command."""
        cpu = _cpu_seconds(self.node)
        started = time.monotonic()
        rate = await commands(port, connections, seconds)
        took = time.monotonic() - started
        return rate, (_cpu_seconds(self.node) - cpu) / (rate * took) * 1e6


@dataclass(frozen=True)
class Load:
    pollers: int
    every: float
    connections: int
    seconds: float


async def _with_pollers(phase: Phase, port: int, path: str, load: Load) -> tuple[float, float, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    args = ["--poll", "--port", str(port), "--pollers", str(load.pollers), "--path", path]
    child = await asyncio.create_subprocess_exec(
        *_child(*args, "--every", str(load.every)), env=env, stdout=asyncio.subprocess.PIPE
    )
    if child.stdout is None or (await child.stdout.readline()).strip() != b"ready":
        raise RuntimeError("the pollers did not start")
    rate, cpu = await phase.run(port, load.connections, load.seconds)
    child.send_signal(signal.SIGTERM)
    polled = (await child.stdout.read()).decode().strip()
    await child.wait()
    return rate, cpu, polled


def _line(name: str, values: list[float], digits: int = 0) -> str:
    each = " ".join(f"{v:.{digits}f}" for v in values)
    return f"{name}: median {statistics.median(values):.{digits}f} ({each})"


KINDS = ("without", HEALTH, FLOOR)


async def paired(node: int, port: int, rounds: int, load: Load) -> None:
    phase = Phase(node)
    await phase.run(port, load.connections, 2.0)  # warm-up: imports, caches, a journal to scan
    runs: dict[str, list[tuple[float, float]]] = {kind: [] for kind in KINDS}
    polled: dict[str, list[str]] = {HEALTH: [], FLOOR: []}
    for r in range(rounds):
        for kind in KINDS[r % 3 :] + KINDS[: r % 3]:  # each kind first, second, third in turn
            if kind == "without":
                runs[kind].append(await phase.run(port, load.connections, load.seconds))
            else:
                rate, cpu, answers = await _with_pollers(phase, port, kind, load)
                runs[kind].append((rate, cpu))
                polled[kind].append(answers)
    base = runs["without"]
    print(_line("commands/s without pollers", [b[0] for b in base]))
    print(_line("node CPU us per command without pollers", [b[1] for b in base]))
    for kind in (HEALTH, FLOOR):
        print(f"--- {load.pollers} pollers of {kind}")
        print(_line("commands/s", [w[0] for w in runs[kind]]))
        print(_line("node CPU us per command", [w[1] for w in runs[kind]]))
        print(f"answers (status: per second): {' | '.join(polled[kind])}")
        throughput = [w[0] / b[0] for w, b in zip(runs[kind], base, strict=True)]
        capacity = [b[1] / w[1] for w, b in zip(runs[kind], base, strict=True)]
        print(_line("throughput ratio with / without", throughput, 3))
        print(_line("node capacity ratio with / without (CPU per command)", capacity, 3))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--pollers", type=int, default=20)
    parser.add_argument(
        "--every", type=float, default=0.0, help="seconds a poller waits between polls (0)"
    )
    parser.add_argument("--connections", type=int, default=16, help="command connections")
    parser.add_argument("--journal", default="memory://", help="the node's journal store URL")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--poll", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--prefix", default="", help=argparse.SUPPRESS)
    parser.add_argument("--path", default=HEALTH, help=argparse.SUPPRESS)
    args = parser.parse_args()
    import uvloop

    if args.serve:
        serve(args.port, args.journal, args.prefix)
        return
    if args.poll:
        uvloop.run(poll(args.port, args.pollers, args.path, args.every))
        return
    from clicktrace.testing import free_port, unique_name

    port, prefix = free_port(), unique_name("bench-health")
    server = subprocess.Popen(
        _child("--serve", "--port", str(port), "--journal", args.journal, "--prefix", prefix),
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        _wait_for_port(port, server)
        pace = f"every {args.every:g} s" if args.every else "closed-loop"
        print(
            f"{args.connections} command connections, {args.pollers} anonymous pollers"
            f" ({pace}), {args.rounds} rounds x {args.seconds:g} s per phase,"
            f" journal {args.journal.split('@')[-1]}"
        )
        load = Load(args.pollers, args.every, args.connections, args.seconds)
        uvloop.run(paired(server.pid, port, args.rounds, load))
    finally:
        server.terminate()
        server.wait(10)
        if args.journal.startswith("redis"):
            asyncio.run(_drop_keys(args.journal, prefix))


async def _drop_keys(url: str, prefix: str) -> None:
    from redis.asyncio import Redis

    redis = Redis.from_url(url)
    try:
        async for key in redis.scan_iter(match=f"{prefix}*", count=1000):
            await redis.delete(key)
    finally:
        await redis.aclose()


if __name__ == "__main__":
    main()
