"""The todo server as a subprocess exporting its spans to the kit's OTLP receiver."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clicktrace.testing import OtlpReceiver, free_port

HERE = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    # Drive the system's Chromium (Playwright may not download its own here).
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    return {
        **browser_type_launch_args,
        "executable_path": chromium,
        "args": ["--no-sandbox", "--disable-gpu"],
    }


@pytest.fixture(scope="session")
def todo_server(
    clicktrace_otlp: OtlpReceiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("todo") / "server.log"
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": clicktrace_otlp.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "server:app", "--port", str(port)],
            cwd=HERE,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the todo server did not start:\n{log.read_text()}")
            try:
                urllib.request.urlopen(url + "/api/todos", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)
