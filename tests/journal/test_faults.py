"""A journal whose store is down: requests and messages are still served, nothing is raised
into the app, and the loss is counted."""

from __future__ import annotations

import asyncio

import httpx
from opentelemetry.sdk.trace import TracerProvider
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clicktrace import context as click_context
from clicktrace.asgi import ClicktraceMiddleware
from clicktrace.bus import MemoryBus
from clicktrace.envelope import Envelope, new_envelope
from clicktrace.ids import new_id
from clicktrace.journal import create_journal, use


async def test_a_down_store_costs_entries_never_a_request_or_a_message(
    provider: TracerProvider,
) -> None:
    journal = create_journal("redis://127.0.0.1:1/0", timeout=0.2)  # nothing listens there
    previous = use(journal)
    bus = MemoryBus(tracer_provider=provider)
    handled: asyncio.Queue[str] = asyncio.Queue()

    async def handler(envelope: Envelope) -> None:
        await handled.put(envelope.metadata.correlation_id)

    async def command(request: Request) -> Response:
        await bus.publish("t", new_envelope("T", {}))
        return JSONResponse({"status": "accepted"}, 202)

    bus.subscribe("t", handler, group="g")
    await bus.start()
    app = Starlette(
        routes=[Route("/c", command, methods=["POST"])],
        middleware=[Middleware(ClicktraceMiddleware, tracer_provider=provider)],
    )
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        ) as client:
            cid = new_id()
            r = await client.post("/c", headers={"x-correlation-id": cid})
        assert r.status_code == 202
        assert await asyncio.wait_for(handled.get(), 10) == cid
        await journal.flush()
        # published, delivered, acked, accepted: all lost, all counted
        assert journal.drops >= 4
        assert journal.failing_since is not None
        assert click_context.current() is None
    finally:
        use(previous)
        await bus.close()
        await journal.aclose()
