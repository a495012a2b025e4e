"""The e2e trace assertion can fail: run the real demo app in-process, once with a healthy
bus and once with a bus that drops the trace context, and check what `loop_problems` says."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import msgspec
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from clicktrace.bus import Bus, MemoryBus
from clicktrace.envelope import decode, encode
from clicktrace.ids import new_id
from demo_app.server.app import create_app
from demo_app.server.settings import Settings
from e2e.serve import serving
from e2e.trace_check import loop_problems

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
BROWSER_SPAN_ID = "00f067aa0ba902b7"


@dataclass(frozen=True)
class Span:
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: str


class ContextDroppingBus(MemoryBus):
    """A bus that loses the trace context on the way, as a broken adapter would."""

    async def _send(
        self, topic: str, body: bytes, headers: dict[str, str], message_id: str
    ) -> None:
        envelope = decode(body)
        metadata = msgspec.structs.replace(envelope.metadata, traceparent=None, tracestate=None)
        dropped = {k: v for k, v in headers.items() if k not in ("traceparent", "tracestate")}
        await super()._send(
            topic, encode(msgspec.structs.replace(envelope, metadata=metadata)), dropped, message_id
        )


def _spans(exporter: InMemorySpanExporter) -> list[Span]:
    def convert(s: ReadableSpan) -> Span:
        ctx = s.get_span_context()
        assert ctx is not None
        parent = f"{s.parent.span_id:016x}" if s.parent else ""
        return Span(f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}", parent, s.name, s.kind.name)

    return [convert(s) for s in exporter.get_finished_spans()]


def click_through(
    tmp_path: Path, make_bus: Callable[[TracerProvider], Bus], new_name: str
) -> tuple[list[str], list[dict[str, object]]]:
    """Rename product 1 through the real demo app (in-process, real HTTP); the trace
    problems found, and the products as the read model has them afterwards."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = Settings(data_dir=tmp_path, web_dist=tmp_path, topic=f"products-{new_id()}")
    app = create_app(settings, provider,
                     bus=make_bus(provider))
    with serving(app) as url, httpx.Client(base_url=url) as client:
        token = client.post("/clicktrace/session").json()["token"]
        reply = client.post(
            "/api/products/1/rename",
            json={"name": new_name, "metadata": {}},
            headers={"traceparent": f"00-{TRACE_ID}-{BROWSER_SPAN_ID}-01",
                     "x-clicktrace-client": token},
        )
        assert reply.status_code == 202
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(
            s.name.startswith("project ") for s in _spans(exporter)
        ):
            time.sleep(0.02)
        products = client.get("/api/products").json()
    return loop_problems(_spans(exporter), TRACE_ID, BROWSER_SPAN_ID), products


def test_the_check_passes_when_the_bus_carries_the_context(tmp_path: Path) -> None:
    name = f"Renamed {new_id()}"
    problems, products = click_through(tmp_path, lambda tp: MemoryBus(tracer_provider=tp), name)
    assert problems == []
    assert products[0]["name"] == name


def test_the_check_fails_when_the_bus_drops_the_context(tmp_path: Path) -> None:
    problems, _ = click_through(
        tmp_path, lambda tp: ContextDroppingBus(tracer_provider=tp), f"Renamed {new_id()}")
    assert "no bus CONSUMER span in trace " + TRACE_ID in problems
    assert "no projection span in trace " + TRACE_ID in problems
