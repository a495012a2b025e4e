"""A todo list on clicktrace: FastAPI, the in-memory bus, a projection that confirms or
rejects each new todo to the tab that added it. Run: ``uvicorn server:app``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from pydantic import BaseModel, Field

import clicktrace
from clicktrace import Envelope, MemoryBus, Notifier, TokenSigner, new_envelope, new_id
from clicktrace.commands import accepted, invalid_client

if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):  # your usual OpenTelemetry set-up
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)

bus = MemoryBus()
notifier = Notifier(TokenSigner(secret=os.environ.get("TODO_SECRET")))
todos: dict[str, dict[str, Any]] = {}  # the read model


class NewTodo(BaseModel):
    title: str = Field(min_length=1, max_length=100)


api = FastAPI()


@api.get("/api/todos")
async def list_todos() -> list[dict[str, Any]]:
    return list(todos.values())


@api.post("/api/todos", status_code=202)
async def add_todo(todo: NewTodo, request: Request) -> Response:
    if refused := invalid_client(request):  # a stale token: the plugin renews and resends
        return refused
    await bus.publish("todos", new_envelope("TodoAdded", {"id": new_id(), "title": todo.title}))
    return accepted()  # 202 {"correlation_id", "status": "accepted"}


async def project(envelope: Envelope) -> None:
    todo = envelope.payload
    if any(t["title"] == todo["title"] for t in todos.values()):
        await clicktrace.reject(
            notifier.notify, envelope, "duplicate", f"{todo['title']!r} is already on the list"
        )
        return
    todos[todo["id"]] = todo
    await clicktrace.confirm(notifier.notify, envelope, data=todo)


bus.subscribe(
    "todos",
    project,
    group="projection",
    on_dead_letter=clicktrace.reject_on_dead_letter(notifier.notify),
)

web = Path(os.environ.get("TODO_WEB_DIST", Path(__file__).parent / "web" / "dist"))
if web.is_dir():
    api.mount("/", StaticFiles(directory=web, html=True))
app = clicktrace.install(api, notifier=notifier, bus=bus)
