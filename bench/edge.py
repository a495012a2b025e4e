"""Issue 19's edge findings, measured on the demo and the notifier (real uvicorn, loopback).

- ``aborted``: 100 clients that send half of a declared body to the demo's command route and
  close; prints the bytes of log it cost and the tracebacks in it.
- ``concurrent``: 20 renames of one product at once on PostgreSQL (shared server, a schema of
  the run's own, dropped after), and two ids past the ``INTEGER`` column; prints the statuses.
- ``sockets``: 400 authenticated WebSockets from one address (a client id per 16, the
  per-client cap); prints how many the node holds.

Run from the tree root: ``PYTHONPATH=py_sdk:. python bench/edge.py aborted|concurrent|sockets``.
To compare with an older commit, ``git archive <commit> py_sdk demo_app/server | tar -x -C
DIR`` and run the same file with ``PYTHONPATH=DIR/py_sdk:DIR``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import uvicorn
from starlette.types import ASGIApp

from clicktrace.testing import free_port, unique_name

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
SECRET = "clicktrace-bench-secret-0123456789"
# Nothing arrives on an attached socket; a refused one is closed at once (a measurement, not
# a test: a socket still deciding after this would be counted as held).
SETTLE_SECONDS = 0.3


async def _serve(app: ASGIApp) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    return server, task, f"http://127.0.0.1:{port}"


async def aborted(count: int = 100) -> None:
    from demo_app.server.app import create_app
    from demo_app.server.settings import Settings

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    data = Path(tempfile.mkdtemp())
    app = create_app(Settings(data_dir=data, web_dist=data, topic=unique_name("products")))
    server, task, url = await _serve(app)
    port = int(url.rsplit(":", 1)[1])
    start = stream.tell()
    head = (
        b"POST /api/products/1/rename HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"content-length: 1000\r\n\r\n"
    )
    for _ in range(count):
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head + b'{"name": "' + b"x" * 400)
        await writer.drain()
        writer.close()
        await writer.wait_closed()
    async with httpx.AsyncClient(base_url=url) as http:  # served after the aborts: all seen
        await http.get("/api/products")
    server.should_exit = True
    await task
    text = stream.getvalue()[start:]
    print(
        f"{count} aborted uploads: {len(text.encode())} bytes of log, "
        f"{text.count('Traceback')} tracebacks"
    )


def concurrent(tabs: int = 20) -> None:
    from demo_app.server.app import create_app
    from demo_app.server.settings import Settings

    schema = unique_name("bench", sql=True)
    data = Path(tempfile.mkdtemp())
    settings = Settings(
        data_dir=data,
        web_dist=data,
        topic=unique_name("products"),
        database_url=PG_DSN,
        pg_schema=schema,
    )
    app = create_app(settings)

    async def run() -> tuple[list[int], list[int]]:
        server, task, url = await _serve(app)
        barrier = threading.Barrier(tabs)

        def rename(i: int) -> int:
            with httpx.Client(timeout=60) as http:
                barrier.wait()
                reply = http.post(f"{url}/api/products/4/rename", json={"name": f"Tab {i}"})
                return reply.status_code

        loop = asyncio.get_running_loop()
        try:
            with ThreadPoolExecutor(tabs) as pool:
                codes = await asyncio.gather(
                    *(loop.run_in_executor(pool, rename, i) for i in range(tabs))
                )
            async with httpx.AsyncClient(base_url=url) as http:
                far = [
                    (await http.post(f"/api/products/{i}/rename", json={"name": "x"})).status_code
                    for i in (2**31, 2**62)
                ]
        finally:
            server.should_exit = True
            await task
            import asyncpg

            conn = await asyncpg.connect(PG_DSN)
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            await conn.close()
        return list(codes), far

    codes, far = asyncio.run(run())
    print(
        f"{tabs} concurrent renames of one product: {codes.count(500)} got 500, "
        f"{codes.count(202)} got 202; ids 2^31 and 2^62: {far}"
    )


async def sockets(attempts: int = 400) -> None:
    from starlette.applications import Starlette
    from websockets.asyncio.client import ClientConnection, connect

    from clicktrace.notify import Limits, Notifier, TokenSigner, WebSocketTransport

    # Sessions unlimited here so the run does not wait on the mint rate (1/s, burst 30).
    notifier = Notifier(TokenSigner(SECRET), WebSocketTransport(), limits=Limits(session_rate=None))
    server, task, url = await _serve(notifier.asgi(Starlette(routes=notifier.routes)))
    async with httpx.AsyncClient(base_url=url) as http:
        tokens = [
            (await http.post("/clicktrace/session")).json()["token"]
            for _ in range(attempts // 16 + 1)
        ]
    held: list[ClientConnection] = []
    for i in range(attempts):
        ws = await connect(url.replace("http://", "ws://") + "/clicktrace/ws")
        await ws.send(json.dumps({"token": tokens[i // 16]}))
        try:
            await asyncio.wait_for(ws.recv(), SETTLE_SECONDS)
        except TimeoutError:
            held.append(ws)
        except Exception:
            pass  # closed: refused
    print(
        f"one address, {attempts} authenticated sockets ({len(tokens)} client ids): "
        f"{len(held)} held, {attempts - len(held)} refused"
    )
    for ws in held:
        await ws.close()
    server.should_exit = True
    await task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("case", choices=["aborted", "concurrent", "sockets"])
    case = parser.parse_args().case
    if case == "aborted":
        asyncio.run(aborted())
    elif case == "concurrent":
        concurrent()
    else:
        asyncio.run(sockets())


if __name__ == "__main__":
    main()
