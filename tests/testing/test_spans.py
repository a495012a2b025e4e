"""The in-process span collector (fixture ``clicktrace_spans``) against a real server: an
in-process FastAPI app, with OpenTelemetry's own ASGI instrumentation adding spans."""

from __future__ import annotations

import asyncio

import httpx
import uvicorn
from fastapi import FastAPI
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

import clicktrace
from clicktrace import Envelope, MemoryBus, Notifier, TokenSigner, confirm, new_envelope
from clicktrace.notify import WebSocketTransport
from clicktrace.testing import (
    SERVER_LOOP,
    SpanCollector,
    assert_one_trace,
    free_port,
    trace_problems,
    unique_name,
)

SECRET = "clicktrace-test-secret-0123456789"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
WAIT = 10.0


async def test_one_trace_through_fastapi_under_otel_asgi_instrumentation(
    clicktrace_spans: SpanCollector,
) -> None:
    unused_port = free_port()
    provider = clicktrace_spans.tracer_provider
    bus = MemoryBus(tracer_provider=provider)
    notifier = Notifier(TokenSigner(SECRET), WebSocketTransport(), tracer_provider=provider)
    done = asyncio.Event()
    topic = unique_name("todos")

    async def project(envelope: Envelope) -> None:
        await confirm(notifier.notify, envelope)
        done.set()

    bus.subscribe(topic, project, group="projection")
    api = FastAPI()

    @api.post("/todos", status_code=202)
    async def add() -> dict[str, str]:
        await bus.publish(topic, new_envelope("TodoAdded", {}))
        return {"status": "accepted"}

    app = OpenTelemetryMiddleware(
        clicktrace.install(api, notifier=notifier, bus=bus, tracer_provider=provider),
        tracer_provider=provider,
    )
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=unused_port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{unused_port}") as http:
            token = (await http.post("/clicktrace/session")).json()["token"]
            reply = await http.post(
                "/todos",
                headers={"traceparent": f"00-{TRACE}-{PARENT}-01", "x-clicktrace-client": token},
            )
            await asyncio.wait_for(done.wait(), WAIT)
    finally:
        server.should_exit = True
        await task
    assert reply.status_code == 202
    spans = clicktrace_spans.spans(TRACE)
    assert any(s.kind == "INTERNAL" for s in spans)  # the instrumentation's own, in between
    assert_one_trace(spans, trace_id=TRACE, root_span_id=PARENT, hops=SERVER_LOOP)
    # and the check can fail on the same spans: the click's root is not this span id
    assert trace_problems(spans, trace_id=TRACE, root_span_id="1" * 16, hops=SERVER_LOOP)
