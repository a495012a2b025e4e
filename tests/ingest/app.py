"""A tiny app with everything a browser's click crosses here (not a test module): the edge
(ClicktraceMiddleware), a command route, the span route and the journal route; and a journal
store that lags, fails or hangs."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clicktrace.asgi.middleware import ClicktraceMiddleware
from clicktrace.ingest import browser_traces_route
from clicktrace.journal import Entry, Journal, journal_route
from clicktrace.journal._store import Process
from clicktrace.notify import TokenSigner
from clicktrace.web import RateLimit

SECRET = "a-secret-of-at-least-sixteen-bytes"
COMMAND = "/api/rename"


class Discard(SpanExporter):
    """The trace pipeline, when a test looks only at the journal."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def click_app(
    journal: Journal, signer: TokenSigner, exporter: SpanExporter | None = None, **options: Any
) -> Starlette:
    """Commands are answered 202 (422 with ``?refuse``); the span route's rate limits are off
    unless ``options`` set them: these tests are about the journal."""

    async def command(request: Request) -> Response:
        return JSONResponse({}, 422 if "refuse" in request.query_params else 202)

    options.setdefault("rate", RateLimit(per_second=1e9, burst=10**9))
    options.setdefault("peer_rate", None)
    options.setdefault("peer_span_rate", None)
    return Starlette(
        routes=[
            browser_traces_route(
                client_verifier=signer.verify, exporter=exporter or Discard(), **options
            ),
            journal_route(journal, client_verifier=signer.verify),
            Route(COMMAND, command, methods=["POST"]),
        ],
        middleware=[Middleware(ClicktraceMiddleware, client_verifier=signer.verify)],
    )


class LaggingStore:
    """A store behind the writer's queue (as Redis, SQLite, PostgreSQL are); its reads can be
    made to fail or hang."""

    def __init__(self) -> None:
        self.entries: dict[str, list[Entry]] = {}
        self.dropped = 0
        self.failing: BaseException | None = None
        self.hanging = False

    async def write(self, entries: Sequence[Entry]) -> None:
        for e in entries:
            self.entries.setdefault(e.correlation_id, []).append(e)

    async def read(self, correlation_id: str) -> list[Entry]:
        if self.failing is not None:
            raise self.failing
        if self.hanging:
            await asyncio.Event().wait()
        return list(self.entries.get(correlation_id, ()))

    async def recent(self, since_ms: float, limit: int) -> list[str]:
        return []

    async def open_clicks(self, before_ms: float, limit: int) -> tuple[list[str], int]:
        return [], 0

    async def dead_lettered(self, limit: int) -> tuple[list[str], int]:
        return [], 0

    async def register(self, process: str, info: Process) -> None:
        return None

    async def unregister(self, process: str) -> None:
        return None

    async def processes(self) -> dict[str, Process]:
        return {}

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        return None
