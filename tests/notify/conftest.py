"""Fixtures for notify tests: private tracing, real uvicorn servers on loopback, real clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import uvicorn
from starlette.types import ASGIApp

from clicktrace.testing import free_port, unique_name

REDIS_URL = "redis://127.0.0.1:6379/0"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
SECRET = "clicktrace-test-secret-0123456789"
WAIT = 10.0  # generous upper bound for anything to arrive; never a timing assertion

Serve = Callable[[ASGIApp], Awaitable[str]]


@pytest.fixture
def channel() -> str:
    return unique_name("test")


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Start ``app`` under uvicorn on a free loopback port; returns its base URL."""
    servers: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []

    async def start(app: ASGIApp) -> str:
        port = free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            ws="websockets-sansio",
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        servers.append((server, task))
        return f"http://127.0.0.1:{port}"

    yield start
    for server, _ in servers:
        server.should_exit = True
    await asyncio.gather(*(task for _, task in servers))
