"""The SERVER span of a command the edge refused says so (the edge decided the outcome)."""

from __future__ import annotations

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from clicktrace.asgi import ClicktraceMiddleware
from clicktrace.ids import new_id


@pytest.mark.parametrize(
    ("status", "outcome"), [(202, None), (400, "refused"), (409, "refused"), (503, None)]
)
async def test_a_refused_command_marks_its_server_span(
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    status: int,
    outcome: str | None,
) -> None:
    async def command(request: Request) -> JSONResponse:
        return JSONResponse({}, status_code=status)

    app = Starlette(routes=[Route("/cmd", command, methods=["POST"])])
    app.add_middleware(ClicktraceMiddleware, tracer_provider=provider)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        await client.post("/cmd", headers={"x-correlation-id": new_id()})
    (span,) = exporter.get_finished_spans()
    assert (span.attributes or {}).get("clicktrace.outcome") == outcome
