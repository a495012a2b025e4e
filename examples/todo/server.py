"""A todo list on clicktrace: FastAPI, the in-memory bus, a projection that confirms or
rejects each new todo to the tab that added it and publishes it to every tab watching
``todos``. Run: ``uvicorn server:app``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from pydantic import BaseModel, Field

import clicktrace
from clicktrace import Envelope, MemoryBus, Notifier, Rejected, TokenSigner, new_id
from clicktrace.commands import Command, command_route

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


def new_todo(command: Command) -> dict[str, Any]:  # NewTodo refuses a bad title: 422
    return {"id": new_id(), "title": NewTodo(**command.body).title}


# POST /api/todos: 401 for a stale token (the plugin renews and resends), 422 for a bad
# title, else TodoAdded on the bus and 202 {"correlation_id", "status": "accepted"}.
add_todo = command_route("/api/todos", "TodoAdded", bus, topic="todos", payload=new_todo)


async def project(envelope: Envelope) -> dict[str, Any]:
    """Returns what the tab is confirmed with; raising Rejected rolls its optimistic todo back.
    Every tab watching ``todos`` (its other tabs, everyone else's) gets the new todo live."""
    todo: dict[str, Any] = envelope.payload
    if any(t["title"] == todo["title"] for t in todos.values()):
        raise Rejected("duplicate", f"{todo['title']!r} is already on the list")
    todos[todo["id"]] = todo
    await notifier.publish("todos", todo)
    return todo


bus.subscribe("todos", clicktrace.confirm_or_reject(notifier.notify, project), group="projection")

web = Path(os.environ.get("TODO_WEB_DIST", Path(__file__).parent / "web" / "dist"))
if web.is_dir():
    api.mount("/", StaticFiles(directory=web, html=True))
# Also: a message the projection gives up on is rejected to its tab (reject_dead_letters).
app = clicktrace.install(api, notifier=notifier, bus=bus, routes=[add_todo])
