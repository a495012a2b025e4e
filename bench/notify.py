"""Notification routing: clicktrace's Notifier vs python-socketio's plain ``emit(to=sid)``.

1,000 Socket.IO clients (python-socketio ``AsyncClient``, in a separate process so the load
generator does not starve the server) each receive notifications for their own correlation
ids. The modes run in one go: clicktrace and plain emit, on one node and across two nodes
joined through Redis (every notification produced on the node the client is *not* on), and
clicktrace untraced on one node (no-op tracer provider: the span's share of the cost). Each
mode has two phases: throughput (send as fast as the producer can, 16 concurrent producers)
and latency at a fixed offered rate. Latency is server send to client receipt, same clock.

Run: ``python bench/notify.py`` (``--help`` for sizes). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

SECRET = "clicktrace-bench-secret-0123456789"
REDIS_URL = "redis://127.0.0.1:6379/0"
# "untraced": clicktrace with a no-op tracer provider, to separate the PRODUCER span's cost
# from routing, seq and replay.
MODES = [("clicktrace", 1), ("untraced", 1), ("plain", 1), ("clicktrace", 2), ("plain", 2)]


# --- server process -------------------------------------------------------------------------


def serve(kind: str, port: int, redis_url: str | None, channel: str) -> None:
    import socketio
    import uvicorn
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import NoOpTracerProvider
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from clicktrace.ids import new_id
    from clicktrace.notify import Limits, Notifier, Replay, SocketIOTransport, TokenSigner

    notifier: Notifier | None = None
    sio: Any
    if kind != "plain":
        # A recording SDK provider without exporters: spans cost what they cost in production.
        provider = TracerProvider() if kind == "clicktrace" else NoOpTracerProvider()
        # All the bench's clients come from one address, 50 connecting at a time.
        notifier = Notifier(
            TokenSigner(SECRET),
            SocketIOTransport(redis_url=redis_url, channel=channel),
            replay=Replay(redis_url=redis_url, prefix=channel),
            limits=Limits(max_pending_per_peer=10_000),
            tracer_provider=provider,
        )
        sio = notifier.sio
    else:
        manager = socketio.AsyncRedisManager(redis_url, channel=channel) if redis_url else None
        sio = socketio.AsyncServer(async_mode="asgi", client_manager=manager)

    async def send(target: str) -> None:
        data = {"t": time.time()}
        if notifier is not None:
            await notifier.notify(target, correlation_id=new_id(), status="confirmed", data=data)
        else:
            await sio.emit(
                "clicktrace",
                {"seq": 0, "correlation_id": new_id(), "status": "confirmed", "data": data},
                to=target,
            )

    async def run(request: Request) -> JSONResponse:
        spec = await request.json()
        targets, count, rate = spec["targets"], spec["count"], spec["rate"]
        started = time.perf_counter()
        if rate:  # paced: a batch every 10 ms
            batch, sent, tick = max(1, rate // 100), 0, started
            while sent < count:
                n = min(batch, count - sent)
                await asyncio.gather(*(send(targets[(sent + i) % len(targets)]) for i in range(n)))
                sent += n
                tick += n / rate
                await asyncio.sleep(max(0.0, tick - time.perf_counter()))
        else:

            async def producer(k: int) -> None:
                for i in range(k, count, 16):
                    await send(targets[i % len(targets)])

            await asyncio.gather(*(producer(k) for k in range(16)))
        return JSONResponse({"seconds": time.perf_counter() - started})

    inner = Starlette(routes=[Route("/bench/run", run, methods=["POST"])])
    app = notifier.asgi(inner) if notifier else socketio.ASGIApp(sio, other_asgi_app=inner)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="error",
        lifespan="off",
        ws="websockets-sansio",
        backlog=4096,
    )


# --- client process -------------------------------------------------------------------------


async def clients(kind: str, urls: list[str], n: int) -> None:
    import socketio

    from clicktrace.notify import TokenSigner

    signer = TokenSigner(SECRET)
    state: dict[str, Any] = {"latencies": [], "last": 0.0, "expect": -1, "done": asyncio.Event()}

    async def on_frame(frame: dict[str, Any]) -> None:
        now = time.time()
        state["latencies"].append((now - frame["data"]["t"]) * 1000)
        state["last"] = now
        if len(state["latencies"]) == state["expect"]:
            state["done"].set()

    gate = asyncio.Semaphore(50)
    targets: list[list[Any]] = [[]] * n

    async def connect(i: int) -> socketio.AsyncClient:
        node = i % len(urls)
        client = socketio.AsyncClient(reconnection=False)
        client.on("clicktrace", on_frame)
        auth = None
        target = ""
        if kind != "plain":
            session = signer.issue()
            auth, target = {"token": session.token, "last_seq": 0}, session.client_id
        async with gate:
            await client.connect(urls[node], auth=auth, transports=["websocket"], wait_timeout=30)
        if kind == "plain":
            target = client.get_sid()
        # Produced on the other node when there are two: every frame crosses Redis.
        targets[i] = [(node + 1) % len(urls), target]
        return client

    conns = await asyncio.gather(*(connect(i) for i in range(n)))
    print(json.dumps({"targets": targets}), flush=True)
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        command = json.loads(line)
        if command.get("quit"):
            break
        state["latencies"], state["expect"] = [], command["expect"]
        state["done"] = asyncio.Event()
        print(json.dumps({"armed": True}), flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(state["done"].wait(), command["timeout"])
        lat = sorted(state["latencies"])
        print(
            json.dumps(
                {
                    "received": len(lat),
                    "last": state["last"],
                    "p50": percentile(lat, 0.50),
                    "p99": percentile(lat, 0.99),
                    "mean": statistics.fmean(lat) if lat else float("nan"),
                }
            ),
            flush=True,
        )
    await asyncio.gather(*(c.disconnect() for c in conns))


# --- driver ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


async def run_mode(kind: str, nodes: int, args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    channel = f"ct-bench-{time.time_ns()}"
    ports = [free_port() for _ in range(nodes)]
    redis = ["--redis-url", REDIS_URL] if nodes > 1 else []
    servers = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "server",
                "--kind",
                kind,
                "--port",
                str(p),
                "--channel",
                channel,
                *redis,
            ]
        )
        for p in ports
    ]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    client_proc = None
    try:
        async with httpx.AsyncClient(timeout=300) as http:
            for url in urls:
                for _ in range(600):
                    try:
                        await http.post(
                            url + "/bench/run", json={"targets": ["x"], "count": 0, "rate": 0}
                        )
                        break
                    except httpx.TransportError:
                        await asyncio.sleep(0.05)
            client_proc = await asyncio.create_subprocess_exec(
                sys.executable,
                __file__,
                "clients",
                "--kind",
                kind,
                "--urls",
                ",".join(urls),
                "--n",
                str(args.clients),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            assert client_proc.stdout is not None and client_proc.stdin is not None
            by_node: list[list[str]] = [[] for _ in urls]
            for node, target in json.loads(await client_proc.stdout.readline())["targets"]:
                by_node[node].append(target)
            result: dict[str, Any] = {"mode": f"{kind}, {nodes} node{'s' * (nodes > 1)}"}
            for phase, count, rate in (
                ("throughput", args.count, 0),
                ("latency", args.rate * args.seconds, args.rate),
            ):
                client_proc.stdin.write(
                    json.dumps({"expect": count, "timeout": args.timeout}).encode() + b"\n"
                )
                await client_proc.stdin.drain()
                await client_proc.stdout.readline()  # armed
                t0 = time.time()
                share = [count // nodes + (i < count % nodes) for i in range(nodes)]
                await asyncio.gather(
                    *(
                        http.post(
                            url + "/bench/run",
                            json={"targets": by_node[i], "count": share[i], "rate": rate // nodes},
                        )
                        for i, url in enumerate(urls)
                    )
                )
                stats = json.loads(await client_proc.stdout.readline())
                result[phase] = {
                    "received": stats["received"],
                    "expected": count,
                    "per_second": stats["received"] / max(1e-9, stats["last"] - t0),
                    "p50": stats["p50"],
                    "p99": stats["p99"],
                    "mean": stats["mean"],
                }
            client_proc.stdin.write(b'{"quit": true}\n')
            await client_proc.stdin.drain()
            await asyncio.wait_for(client_proc.wait(), 60)
            return result
    finally:
        if client_proc is not None and client_proc.returncode is None:
            client_proc.kill()
        for proc in servers:
            proc.terminate()
            proc.wait(10)


def median_result(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {"mode": rounds[0]["mode"], "rounds": len(rounds)}
    for phase in ("throughput", "latency"):
        merged[phase] = {
            key: statistics.median(r[phase][key] for r in rounds) for key in rounds[0][phase]
        }
        merged[phase]["received"] = min(r[phase]["received"] for r in rounds)
        merged[phase]["expected"] = rounds[0][phase]["expected"]
    return merged


def table(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [
        f"{args.clients} Socket.IO clients; throughput: {args.count} notifications sent as fast "
        f"as 16 producers can; latency: {args.rate}/s offered for {args.seconds} s; "
        f"median of {args.rounds} interleaved round(s); delivered is the worst round.",
        "",
        "| mode | delivered | notifications/s | p50 ms | p99 ms "
        f"| at {args.rate}/s: delivered | p50 ms | p99 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        t, lat = r["throughput"], r["latency"]
        lines.append(
            f"| {r['mode']} | {t['received']}/{t['expected']} | {t['per_second']:,.0f} "
            f"| {t['p50']:.1f} | {t['p99']:.1f} | {lat['received']}/{lat['expected']} "
            f"| {lat['p50']:.1f} | {lat['p99']:.1f} |"
        )
    ratios = []
    for kind in ("clicktrace", "untraced"):
        for nodes in (1, 2):
            name = f"{nodes} node"
            mine = [r for r in results if r["mode"].startswith(kind) and name in r["mode"]]
            ref = [r for r in results if r["mode"].startswith("plain") and name in r["mode"]]
            if mine and ref:
                ratio = mine[0]["throughput"]["per_second"] / ref[0]["throughput"]["per_second"]
                ratios.append(
                    f"{nodes} node{'s' * (nodes > 1)}: {kind}/plain throughput = {ratio:.2f}"
                )
    return "\n".join([*lines, "", *ratios])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="role")
    s = sub.add_parser("server")
    s.add_argument("--kind", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--redis-url")
    s.add_argument("--channel", required=True)
    c = sub.add_parser("clients")
    c.add_argument("--kind", required=True)
    c.add_argument("--urls", required=True)
    c.add_argument("--n", type=int, required=True)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--modes", default="all", help="e.g. clicktrace:1,plain:1")
    args = parser.parse_args()
    if args.role == "server":
        serve(args.kind, args.port, args.redis_url, args.channel)
    elif args.role == "clients":
        asyncio.run(clients(args.kind, args.urls.split(","), args.n))
    else:
        modes = (
            MODES
            if args.modes == "all"
            else [(m.split(":")[0], int(m.split(":")[1])) for m in args.modes.split(",")]
        )
        # Rounds interleave the modes, so load from elsewhere on a shared machine falls on
        # all of them alike; each figure is the median over rounds.
        runs: dict[tuple[str, int], list[dict[str, Any]]] = {m: [] for m in modes}
        for r in range(args.rounds):
            for kind, nodes in modes:
                print(f"round {r + 1}: {kind} on {nodes} node(s)...", file=sys.stderr, flush=True)
                runs[(kind, nodes)].append(asyncio.run(run_mode(kind, nodes, args)))
        print(table([median_result(rs) for rs in runs.values()], args))


if __name__ == "__main__":
    main()
