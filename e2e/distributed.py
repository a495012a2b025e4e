"""The distributed demo as the e2e tests run it: honcho on the Procfile (two API nodes, the
relay, the projection worker), on one broker and one transport, with names of its own on the
shared Redis, broker and PostgreSQL, exporting every process's spans to one receiver."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from clicktrace.testing import OtlpReceiver, free_port, unique_name
from e2e.conftest import ROOT
from e2e.serve import run_coroutine

REDIS_URL = "redis://127.0.0.1:6379/0"
PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
BROKERS = {
    "redis": "redis://127.0.0.1:6379/0",
    "rabbitmq": "amqp://guest:guest@127.0.0.1:5672/",
    "nats": "nats://127.0.0.1:4222",
}
TRACE_UI = "http://traces.invalid/trace/{trace_id}"
# The fault panel is off by default; the stacks turn it on, with this operator token.
OPERATOR_TOKEN = secrets.token_hex(16)
HONCHO = Path(sys.executable).with_name("honcho")


@dataclass(frozen=True)
class Stack:
    nodes: tuple[str, str]
    """The two API nodes' base URLs."""
    transport: str
    otlp: OtlpReceiver
    log: Path
    channel: str = ""
    """``CLICKTRACE_CHANNEL``: the prefix of the stack's keys on the shared Redis (its journal
    is under ``{channel}:journal``)."""
    workers: tuple[str, str] = ("", "")
    """The relay's and the projection's health listeners' base URLs."""
    operator_token: str = ""

    def page_url(self, node: int = 0, **query: str) -> str:
        params = {**query}
        if self.transport == "websocket":
            params["transport"] = "websocket"
        tail = "&".join(f"{k}={v}" for k, v in params.items())
        return f"{self.nodes[node]}/" + (f"?{tail}" if tail else "")


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/products", timeout=1) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


def _wait(stack: Stack, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"honcho exited with {process.returncode}:\n{stack.log.read_text()}")
        if (
            all(_ready(url) for url in stack.nodes)
            and "projection consuming" in (stack.log.read_text())
            and "outbox relay publishing" in stack.log.read_text()
        ):
            return
        time.sleep(0.2)
    raise RuntimeError(f"the distributed demo did not start within 90 s:\n{stack.log.read_text()}")


def _drop_schema(schema: str) -> None:
    async def drop() -> None:
        conn = await asyncpg.connect(PG_DSN)
        try:
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        finally:
            await conn.close()

    run_coroutine(drop())


@contextmanager
def running_stack(data: Path, bus_url: str, transport: str) -> Iterator[Stack]:
    name = unique_name(sql=True)  # the run prefix: a PostgreSQL schema name too
    ports = free_port(), free_port()
    health_ports = free_port(), free_port()
    log = data / "honcho.log"
    with OtlpReceiver() as otlp, log.open("wb") as out:
        env = {
            **os.environ,
            "HOST": "127.0.0.1",
            "API1_PORT": str(ports[0]),
            "API2_PORT": str(ports[1]),
            "RELAY_HEALTH_PORT": str(health_ports[0]),
            "PROJECTION_HEALTH_PORT": str(health_ports[1]),
            "PYTHON": sys.executable,
            "PYTHONUNBUFFERED": "1",
            "CLICKTRACE_BUS_URL": bus_url,
            "CLICKTRACE_TRANSPORT": transport,
            "CLICKTRACE_REDIS_URL": REDIS_URL,
            "CLICKTRACE_DATABASE_URL": PG_DSN,
            "CLICKTRACE_JOURNAL_URL": REDIS_URL,
            "CLICKTRACE_TRACE_URL": TRACE_UI,
            "CLICKTRACE_FAULTS": "1",
            "CLICKTRACE_OPERATOR_TOKEN": OPERATOR_TOKEN,
            "CLICKTRACE_SECRET": secrets.token_hex(16),
            "CLICKTRACE_TOPIC": f"{name}-products",
            "CLICKTRACE_CHANNEL": f"{name}-e2e",
            "CLICKTRACE_PG_SCHEMA": name,
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
        process = subprocess.Popen(
            [str(HONCHO), "-f", "Procfile", "start"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        nodes = (f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}")
        workers = (
            f"http://127.0.0.1:{health_ports[0]}",
            f"http://127.0.0.1:{health_ports[1]}",
        )
        stack = Stack(
            nodes,
            transport,
            otlp,
            log,
            channel=env["CLICKTRACE_CHANNEL"],
            workers=workers,
            operator_token=OPERATOR_TOKEN,
        )
        try:
            _wait(stack, process)
            yield stack
        finally:
            process.send_signal(signal.SIGTERM)  # honcho stops every process it started
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            _drop_schema(name)
