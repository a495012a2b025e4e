"""The shipped trace assertion (clicktrace.testing) can fail on the demo: run the real demo
app in-process, once with a healthy bus and once with a bus that drops the trace context, and
check what `trace_problems` says."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import msgspec
from opentelemetry.sdk.trace import TracerProvider

from clicktrace.bus import Bus, MemoryBus
from clicktrace.envelope import decode, encode
from clicktrace.ids import new_id
from clicktrace.testing import SERVER_LOOP, SpanCollector, trace_problems, unique_name
from demo_app.server.app import create_app
from demo_app.server.settings import Settings
from e2e.serve import serving

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
BROWSER_SPAN_ID = "00f067aa0ba902b7"


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


def click_through(
    tmp_path: Path, make_bus: Callable[[TracerProvider], Bus], new_name: str
) -> tuple[list[str], list[dict[str, object]]]:
    """Rename product 1 through the real demo app (in-process, real HTTP); the trace
    problems found, and the products as the read model has them afterwards."""
    collector = SpanCollector(service="demo")
    provider = collector.tracer_provider
    settings = Settings(data_dir=tmp_path, web_dist=tmp_path, topic=unique_name("products"))
    app = create_app(settings, provider, bus=make_bus(provider))
    with serving(app) as url, httpx.Client(base_url=url) as client:
        token = client.post("/clicktrace/session").json()["token"]
        reply = client.post(
            "/api/products/1/rename",
            json={"name": new_name, "metadata": {}},
            headers={
                "traceparent": f"00-{TRACE_ID}-{BROWSER_SPAN_ID}-01",
                "x-clicktrace-client": token,
            },
        )
        assert reply.status_code == 202
        # The projection's notification is the last hop of the server's loop.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(
            s.kind == "PRODUCER" and s.attributes.get("messaging.system") == "clicktrace"
            for s in collector.spans()
        ):
            time.sleep(0.02)
        products = client.get("/api/products").json()
    problems = trace_problems(
        collector.spans(), trace_id=TRACE_ID, root_span_id=BROWSER_SPAN_ID, hops=SERVER_LOOP
    )
    collector.shutdown()
    return problems, products


def test_the_check_passes_when_the_bus_carries_the_context(tmp_path: Path) -> None:
    name = f"Renamed {new_id()}"
    problems, products = click_through(tmp_path, lambda tp: MemoryBus(tracer_provider=tp), name)
    assert problems == []
    assert products[0]["name"] == name


def test_the_check_fails_when_the_bus_drops_the_context(tmp_path: Path) -> None:
    problems, _ = click_through(
        tmp_path, lambda tp: ContextDroppingBus(tracer_provider=tp), f"Renamed {new_id()}"
    )
    assert problems[0].startswith(f"trace {TRACE_ID} breaks after the bus PRODUCER span ")
    assert problems[0].endswith(": the bus CONSUMER span is not below it")
    assert "goes on in another trace" in problems[1]
    assert "(CONSUMER, service demo): the trace context was lost on the way there" in problems[1]
