"""e2e fixtures: the demo app as a real subprocess, an OTLP receiver, Debian's Chromium."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from clicktrace.testing import OtlpReceiver, free_port

# Patience, not a timing assertion: a loaded 2-core CI machine can take seconds per step.
expect.set_options(timeout=15_000)

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    # Playwright cannot download its own browser here: drive Debian's Chromium.
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_FLAGS}


@dataclass(frozen=True)
class Demo:
    url: str
    otlp: OtlpReceiver
    log: Path


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"demo exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/api/products", timeout=1) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"demo did not answer within 60 s:\n{log.read_text()}")


@contextmanager
def running_demo(data: Path, **settings: str) -> Iterator[Demo]:
    """The demo as a subprocess on a free port, exporting its spans to a fresh receiver."""
    log = data / "demo.log"
    port = free_port()
    with OtlpReceiver() as otlp, log.open("wb") as out:
        env = {
            **os.environ,
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "DATA_DIR": str(data),
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "PYTHONUNBUFFERED": "1",
            **settings,
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "demo_app.server"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(url, process, log)
            yield Demo(url=url, otlp=otlp, log=log)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """The demo on its embedded defaults: in-memory bus, SQLite, Socket.IO."""
    if not (ROOT / "demo_app" / "web" / "dist" / "index.html").exists():
        raise RuntimeError("the web app is not built: run `make web` (make test does)")
    with running_demo(tmp_path_factory.mktemp("demo-data")) as running:
        yield running


@pytest.fixture(scope="session")
def websocket_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """The demo with notifications over the plain WebSocket transport."""
    with running_demo(
        tmp_path_factory.mktemp("demo-ws-data"), CLICKTRACE_TRANSPORT="websocket"
    ) as running:
        yield running


# The distributed demo on every broker and transport; each started once, for all its tests.
STACKS = [
    f"{broker}-{transport}"
    for broker in ("redis", "rabbitmq", "nats")
    for transport in ("socketio", "websocket")
]


@pytest.fixture(scope="session", params=STACKS)
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """The distributed demo (honcho, Procfile) on one broker and one transport."""
    from e2e.distributed import BROKERS, running_stack

    broker, transport = str(request.param).split("-")
    with running_stack(tmp_path_factory.mktemp(request.param), BROKERS[broker], transport) as s:
        yield s
