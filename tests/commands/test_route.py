"""command_route: a token the middleware refused is 401, a body past the cap 413, a body that
is not a JSON object 400, a payload that does not validate 422, a bus that cannot take it 503;
else the envelope is published in the click's context and the answer is 202."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, Field
from starlette.applications import Starlette

from clicktrace import MemoryBus, Rejected
from clicktrace.asgi import ClicktraceMiddleware
from clicktrace.claims import MemoryClaims
from clicktrace.commands import Command, command_route
from clicktrace.envelope import Envelope
from clicktrace.ids import new_id
from clicktrace.notify import TokenSigner
from clicktrace.testing import unique_name

SIGNER = TokenSigner("clicktrace-test-secret-0123456789")
WAIT = 10.0
URL = "http://api.test"


class NewTodo(BaseModel):
    title: str = Field(min_length=1, max_length=100)


def todo(command: Command) -> dict[str, Any]:
    return {"id": "t1", "title": NewTodo.model_validate(command.body).title}


async def checked(command: Command) -> dict[str, Any]:
    if command.body.get("title") == "taken":
        raise Rejected("duplicate", "That title is already on the list.")
    return {"title": command.body.get("title"), "list": command.path_params["list"]}


class Taken:
    """A started memory bus whose subscriber collects what it receives."""

    def __init__(self, topic: str) -> None:
        self.bus = MemoryBus()
        self.received: list[Envelope] = []
        self.arrived = asyncio.Event()
        self.bus.subscribe(topic, self._take, group="test")

    async def _take(self, envelope: Envelope) -> None:
        self.received.append(envelope)
        self.arrived.set()


def app_with(*routes: Any) -> Starlette:
    app = Starlette(routes=list(routes))
    app.add_middleware(ClicktraceMiddleware, client_verifier=SIGNER.verify)
    return app


def http(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=URL)


async def test_a_command_is_published_in_its_click_and_answered_202() -> None:
    topic = unique_name("todos")
    taken = Taken(topic)
    await taken.bus.start()
    client_id = new_id()
    token = SIGNER.issue(client_id).token
    deadline = int(time.time() * 1000) + 60_000
    route = command_route("/todos", "TodoAdded", taken.bus, topic=topic, payload=todo)
    try:
        async with http(app_with(route)) as client:
            reply = await client.post(
                "/todos",
                json={"title": "milk", "metadata": {"deadline": deadline}},
                headers={"x-clicktrace-client": token},
            )
            await asyncio.wait_for(taken.arrived.wait(), WAIT)
    finally:
        await taken.bus.close()
    assert reply.status_code == 202
    body = reply.json()
    assert body == {"correlation_id": reply.headers["x-correlation-id"], "status": "accepted"}
    (envelope,) = taken.received
    assert envelope.payload == {"id": "t1", "title": "milk"}
    meta = envelope.metadata
    assert (meta.type, meta.correlation_id, meta.client_id) == (
        "TodoAdded",
        body["correlation_id"],
        client_id,
    )
    assert meta.deadline == deadline  # the plugin's body metadata completed the click


async def test_what_the_route_refuses_is_never_published() -> None:
    topic = unique_name("todos")
    taken = Taken(topic)
    await taken.bus.start()
    routes = [
        command_route("/todos", "TodoAdded", taken.bus, topic=topic, payload=todo, max_bytes=64),
        command_route("/lists/{list}/todos", "TodoAdded", taken.bus, topic=topic, payload=checked),
    ]
    try:
        async with http(app_with(*routes)) as client:
            forged = await client.post(
                "/todos", json={"title": "a"}, headers={"x-clicktrace-client": "forged"}
            )
            large = await client.post("/todos", json={"title": "x" * 100})
            not_object = await client.post("/todos", json=["milk"])
            not_json = await client.post("/todos", content=b"{nope")
            invalid = await client.post("/todos", json={"title": ""})
            rejected = await client.post("/lists/home/todos", json={"title": "taken"})
            taken_ok = await client.post("/lists/home/todos", json={"title": "bread"})
            await asyncio.wait_for(taken.arrived.wait(), WAIT)
    finally:
        await taken.bus.close()
    assert (forged.status_code, forged.json()["error"]["code"]) == (401, "invalid_client")
    assert (large.status_code, large.json()["error"]["code"]) == (413, "payload_too_large")
    assert (not_object.status_code, not_json.status_code) == (400, 400)
    assert (invalid.status_code, invalid.json()["error"]["code"]) == (422, "invalid_body")
    assert "title" in invalid.json()["error"]["message"]  # pydantic said which field
    assert rejected.status_code == 422
    assert rejected.json()["error"] == {
        "code": "duplicate",
        "message": "That title is already on the list.",
    }
    assert taken_ok.status_code == 202
    assert [e.payload for e in taken.received] == [{"title": "bread", "list": "home"}]


async def test_a_bus_that_cannot_take_the_command_is_a_503_with_retry_after(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = MemoryBus()  # never started: publishing raises
    route = command_route("/todos", "TodoAdded", bus, topic=unique_name("todos"))
    async with http(app_with(route)) as client:
        reply = await client.post("/todos", json={"title": "milk"})
    assert reply.status_code == 503
    assert reply.headers["retry-after"] == "1"
    assert reply.json()["error"]["code"] == "unavailable"
    assert "BusNotRunning" in caplog.text and "Traceback" not in caplog.text


async def test_with_claims_a_retried_command_gets_its_first_answer_not_a_second_event() -> None:
    topic = unique_name("todos")
    taken = Taken(topic)
    await taken.bus.start()
    route = command_route("/todos", "TodoAdded", taken.bus, topic=topic, claims=MemoryClaims())
    headers = {"x-clicktrace-client": SIGNER.issue().token, "x-correlation-id": new_id()}
    try:
        async with http(app_with(route)) as client:
            first = await client.post("/todos", json={"title": "milk"}, headers=headers)
            again = await client.post("/todos", json={"title": "milk"}, headers=headers)
            await asyncio.wait_for(taken.arrived.wait(), WAIT)
    finally:
        await taken.bus.close()
    assert (first.status_code, again.status_code) == (202, 202)
    assert json.loads(again.content) == json.loads(first.content)
    assert again.headers["x-clicktrace-replayed"] == "1"
    assert len(taken.received) == 1


def test_what_it_cannot_build_is_refused_at_once() -> None:
    with pytest.raises(TypeError, match="Bus"):
        command_route("/todos", "TodoAdded", object(), topic="todos")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="type"):
        command_route("/todos", "", MemoryBus(), topic="todos")
    with pytest.raises(ValueError, match="max_bytes"):
        command_route("/todos", "TodoAdded", MemoryBus(), topic="todos", max_bytes=0)
