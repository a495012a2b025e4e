"""The kit against real servers: an in-process FastAPI app (with OpenTelemetry's own ASGI
instrumentation adding spans) read through the span collector, a real OTLP/HTTP exporter
read through the receiver, and the pytest plugin staying inert until asked."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

import clicktrace
from clicktrace import Envelope, MemoryBus, Notifier, TokenSigner, confirm, new_envelope
from clicktrace.ids import new_id
from clicktrace.notify import WebSocketTransport
from clicktrace.testing import (
    SERVER_LOOP,
    OtlpReceiver,
    SpanCollector,
    assert_one_trace,
    trace_problems,
)
from clicktrace.testing.ports import free_port, unique_name

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


def test_the_receiver_gets_what_an_otlp_exporter_sends(clicktrace_otlp: OtlpReceiver) -> None:
    provider = TracerProvider(resource=Resource({"service.name": "todo-api"}))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=clicktrace_otlp.endpoint + "/v1/traces"))
    )
    tracer = provider.get_tracer("test")
    click = new_id()
    with (
        tracer.start_as_current_span("POST /todos", kind=SpanKind.SERVER) as server,
        tracer.start_as_current_span(
            "publish todos",
            kind=SpanKind.PRODUCER,
            attributes={"clicktrace.correlation_id": click, "attempt": 2},
        ),
    ):
        pass
    provider.shutdown()
    trace_id = f"{server.get_span_context().trace_id:032x}"
    spans = clicktrace_otlp.wait_for(
        lambda got: len([s for s in got if s.trace_id == trace_id]) == 2
    )
    mine = {s.name: s for s in spans if s.trace_id == trace_id}
    assert mine["POST /todos"].kind == "SERVER"
    assert mine["publish todos"].parent_span_id == mine["POST /todos"].span_id
    assert mine["publish todos"].service == "todo-api"
    assert mine["publish todos"].correlation_id == click
    assert mine["publish todos"].attributes["attempt"] == 2


def test_the_plugin_loads_nothing_until_a_fixture_is_asked_for(tmp_path: Path) -> None:
    (tmp_path / "test_plain.py").write_text(
        "import sys\n\n"
        "def test_plain():\n"
        "    assert 'clicktrace.testing.plugin' in sys.modules\n"
        "    assert not [m for m in sys.modules if m.startswith(('opentelemetry.sdk',\n"
        "                'opentelemetry.proto', 'clicktrace.testing.collector'))]\n\n"
        "def test_asked(clicktrace_spans):\n"
        "    assert 'opentelemetry.sdk.trace' in sys.modules\n"
    )
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            str(tmp_path),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 passed" in run.stdout
