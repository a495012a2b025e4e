"""Sending a dead-lettered command again, from the console's route, on a real app served by
uvicorn: found in the broker's dead letters, applied once (the claims skip it where it was
applied), journaled as a new attempt, and the tab that clicked is told the outcome."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from asyncio.subprocess import PIPE
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from starlette.applications import Starlette
from websockets.asyncio.client import connect

import clicktrace
from clicktrace import Envelope, Notifier, TokenSigner, confirm_or_reject, new_envelope, new_id
from clicktrace.bus import Bus, MemoryBus, create_bus
from clicktrace.claims import MemoryClaims
from clicktrace.console import NotResendable, resend
from clicktrace.console._resend import again, resend_id
from clicktrace.context import ClickContext
from clicktrace.ids import parse_id
from clicktrace.journal import Journal, MemoryStore, create_journal, record, use
from clicktrace.notify import WebSocketTransport
from clicktrace.testing import unique_name
from tests.console.conftest import dead_lettered, now_ms
from tests.test_wiring import served

SECRET = "clicktrace-test-secret-0123456789"
TOKEN = "operator-secret-token-for-the-console"
P = "/clicktrace/console"
REDIS = "redis://127.0.0.1:6379/0"
WAIT = 10.0  # an upper bound for anything to arrive, never a timing assertion


async def until(check: Any, what: str) -> Any:
    """Poll ``check()`` until it returns something truthy (at most ``WAIT`` seconds)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while True:
        found = await check()
        if found:
            return found
        if loop.time() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.05)


@pytest.fixture(params=["memory", "redis"])
async def bus(request: pytest.FixtureRequest, provider: TracerProvider) -> AsyncIterator[Bus]:
    if request.param == "memory":
        yield MemoryBus(tracer_provider=provider)
    else:
        yield create_bus("redis://127.0.0.1:6379/0", tracer_provider=provider)


async def test_a_resent_dead_letter_is_applied_once_and_the_tab_is_told(
    bus: Bus, provider: TracerProvider
) -> None:
    notifier = Notifier(TokenSigner(SECRET), WebSocketTransport())
    claims = MemoryClaims()
    broken = [True]
    applied = [0]

    async def project(envelope: Envelope) -> dict[str, str]:
        if broken[0]:
            raise RuntimeError("the read model is gone")
        applied[0] += 1
        return {"id": "1"}

    topic = unique_name("todos")
    handler = confirm_or_reject(notifier.notify, project)
    bus.subscribe(topic, handler, group="projection", max_attempts=1, dedupe=claims)
    journal = create_journal("memory://")
    app = clicktrace.install(
        Starlette(),
        notifier=notifier,
        bus=bus,
        journal=journal,
        operator_token=TOKEN,
        console=True,
    )
    headers = {"authorization": f"Bearer {TOKEN}", "x-clicktrace-console": "1"}
    async with served(app) as url, httpx.AsyncClient(base_url=url, headers=headers) as http:
        session = (await http.post("/clicktrace/session")).json()
        async with connect(url.replace("http", "ws") + "/clicktrace/ws") as ws:
            await ws.send(json.dumps({"token": session["token"], "last_seq": 0}))
            cid = new_id()
            click = ClickContext(cid, client_id=session["client_id"])
            with provider.get_tracer("test").start_as_current_span("click"):
                envelope = new_envelope("TodoAdded", {"title": "a"}, click=click)
                await bus.publish(topic, envelope)
            first = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
            assert first["status"] == "rejected" and first["correlation_id"] == cid

            async def verdict(state: str) -> dict[str, Any] | None:
                r = await http.get(f"{P}/api/clicks/{cid}")
                body: dict[str, Any] = r.json() if r.status_code == 200 else {}
                return body if body.get("verdict", {}).get("state") == state else None

            before = await until(lambda: verdict("dead_lettered"), "the click dead-lettered")
            assert before["resendable"] is True

            broken[0] = False  # the cause is fixed: send it again
            r = await http.post(f"{P}/api/clicks/{cid}/resend")
            assert r.status_code == 202, r.text
            assert r.json() == {"correlation_id": cid, "attempt": 2}

            second = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
            assert second["status"] == "confirmed" and second["correlation_id"] == cid
            after = await until(lambda: verdict("confirmed"), "the click confirmed")
            stages = [s["stage"] for s in after["stages"]]
            assert "resent" in stages and stages.index("resent") > stages.index("dead_lettered")
            resent = next(s for s in after["stages"] if s["stage"] == "resent")
            assert resent["attempt"] == 2 and resent["trace_id"] == after["trace_ids"][0]
            assert len(after["trace_ids"]) == 1  # the resend stays in the click's trace

            again = await http.post(f"{P}/api/clicks/{cid}/resend")
            assert again.status_code == 409
            assert again.json()["error"]["code"] == "not_dead_lettered"
    assert applied == [1]


async def test_a_resend_is_applied_once_where_the_dead_letter_was_settled_by_its_claim(
    journal_on_memory: Journal,
) -> None:
    """The projection claims each message id, and settles a dead letter by claiming its id
    (as the demo does, so that a late copy of it is never applied after the tab heard
    "rejected"): the resend, a message id of its own, is applied; a copy of the same resend
    (another operator at the same time) and the original are not."""
    bus = MemoryBus()
    claims = MemoryClaims()
    broken = [True]
    applied = [0]

    async def project(envelope: Envelope) -> None:
        if broken[0]:
            raise RuntimeError("down")
        if await claims.claim(None, "projection", envelope.metadata.message_id):
            applied[0] += 1

    async def settle(envelope: Envelope, reason: str) -> None:
        await claims.claim(None, "projection", envelope.metadata.message_id)

    topic = unique_name("todos")
    bus.subscribe(topic, project, group="projection", max_attempts=1, on_dead_letter=settle)
    async with bus:
        cid = new_id()
        late = ClickContext(cid, deadline_ms=int(now_ms()) + 60_000)
        await bus.publish_durable(topic, new_envelope("T", {}, click=late))
        broken[0] = False
        done = await resend(journal_on_memory.store, bus, cid)
        assert (done.attempt, done.topic, done.group) == (2, topic, "projection")
        await until(lambda: asyncio.sleep(0, applied[0]), "the resend applied")
        # The journal now says it was sent again: a second resend is refused...
        with pytest.raises(NotResendable, match="not_dead_lettered"):
            await resend(journal_on_memory.store, bus, cid)
        # ...and copies sent anyway are skipped by the claims.
        letter = (await bus.dead_letters(topic, "projection"))[0]
        assert letter.envelope is not None
        for copy in (again(letter.envelope, 2), letter.envelope):
            await bus.publish_durable(topic, copy)  # returns once it was handled
    assert applied[0] == 1


async def test_a_resend_goes_to_the_group_that_gave_up_only(journal_on_memory: Journal) -> None:
    bus = MemoryBus()
    audited = asyncio.Event()
    broken = [True]
    applied = {"projection": 0, "audit": 0}

    async def project(envelope: Envelope) -> None:
        await audited.wait()  # the audit group's ack comes first: the verdict stays dead
        if broken[0]:
            raise RuntimeError("down")
        applied["projection"] += 1

    async def audit(envelope: Envelope) -> None:
        applied["audit"] += 1
        audited.set()

    topic = unique_name("todos")
    bus.subscribe(topic, project, group="projection", max_attempts=1)
    bus.subscribe(topic, audit, group="audit")
    async with bus:
        cid = new_id()
        await bus.publish_durable(topic, new_envelope("T", {}, click=ClickContext(cid)))
        broken[0] = False
        await resend(journal_on_memory.store, bus, cid)
        await until(lambda: asyncio.sleep(0, applied["projection"]), "the resend applied")
        await bus.publish_durable(topic, new_envelope("T", {}))  # both groups still consume
    # audit: the original and the next message (not the resend); projection: the resend, the next
    assert applied == {"projection": 2, "audit": 2}


def test_a_resend_is_its_own_message_of_the_same_command() -> None:
    click = ClickContext(new_id(), client_id="tab-1", deadline_ms=1)
    original = new_envelope("T", {"a": 1}, click=click)
    second, third = again(original, 2), again(original, 3)
    mid = original.metadata.message_id
    assert second.metadata.message_id == again(original, 2).metadata.message_id  # derived
    assert len({mid, second.metadata.message_id, third.metadata.message_id}) == 3
    assert parse_id(second.metadata.message_id) == second.metadata.message_id
    assert second.metadata.message_id[:10] == mid[:10]
    assert second.metadata.deadline is None
    assert (second.payload, second.metadata.correlation_id, second.metadata.client_id) == (
        {"a": 1},
        click.correlation_id,
        "tab-1",
    )
    assert resend_id("not-a-ulid", 2).startswith("0" * 10)


async def _delivered(journal: Journal, cid: str, times: int) -> bool:
    entries = await journal.read(cid)
    return sum(e.stage == "delivered" for e in entries) >= times


@pytest.fixture
async def journal_on_memory() -> AsyncIterator[Journal]:
    journal = Journal(MemoryStore())
    previous = use(journal)
    yield journal
    use(previous)
    await journal.aclose()


async def test_what_cannot_be_resent_says_why(journal_on_memory: Journal) -> None:
    store = journal_on_memory.store
    bus = MemoryBus()
    async with bus:
        with pytest.raises(NotResendable) as unknown:
            await resend(store, bus, new_id())
        assert unknown.value.code == "not_found"

        gone = dead_lettered(now_ms() - 1000)  # journaled, but the broker never had it
        await store.write(gone)
        with pytest.raises(NotResendable) as missing:
            await resend(store, bus, gone[0].correlation_id)
        assert missing.value.code == "dead_letter_gone"

        cid = new_id()
        record("accepted", correlation_id=cid, outcome="202")
        record("acked", correlation_id=cid)
        await journal_on_memory.flush()
        with pytest.raises(NotResendable) as fine:
            await resend(store, bus, cid)
        assert fine.value.code == "not_dead_lettered"


async def test_a_bus_that_is_not_running_is_503_with_retry_after(
    journal_on_memory: Journal,
) -> None:
    from tests.console.test_route import app, client_for, signed_in

    dead = dead_lettered(now_ms() - 1000)
    await journal_on_memory.store.write(dead)
    async with client_for(app(journal_on_memory, bus=MemoryBus())) as c:  # never started
        await signed_in(c)
        r = await c.post(
            f"{P}/api/clicks/{dead[0].correlation_id}/resend",
            headers={"x-clicktrace-console": "1"},
        )
        assert r.status_code == 503 and r.headers["retry-after"]
        assert r.json()["error"]["code"] == "unavailable"


async def test_a_command_dead_lettered_for_its_deadline_is_applied_when_sent_again(
    journal_on_memory: Journal,
) -> None:
    bus = MemoryBus()
    applied = [0]

    async def project(envelope: Envelope) -> None:
        applied[0] += 1

    topic = unique_name("todos")
    bus.subscribe(topic, project, group="projection", dedupe=MemoryClaims())
    async with bus:
        cid = new_id()
        late = ClickContext(cid, deadline_ms=int(now_ms()) - 1)
        await bus.publish_durable(topic, new_envelope("T", {}, click=late))
        assert applied == [0]  # given up on: its deadline had passed
        done = await resend(journal_on_memory.store, bus, cid)
        assert done.attempt == 2
        await until(lambda: asyncio.sleep(0, applied[0]), "the resend applied")
        await until(lambda: _delivered(journal_on_memory, cid, 2), "the resend journaled")
    assert applied == [1]


async def test_the_cli_sends_a_dead_letter_again(provider: TracerProvider) -> None:
    """``python -m clicktrace resend <id>`` in its own process, on the Redis journal store and
    the Redis bus this process consumes from."""
    prefix = unique_name("journal")
    store = create_journal(REDIS, prefix=prefix)
    previous = use(store)
    bus = create_bus(REDIS, tracer_provider=provider)
    broken = [True]
    applied = [0]

    async def project(envelope: Envelope) -> None:
        if broken[0]:
            raise RuntimeError("down")
        applied[0] += 1

    topic = unique_name("todos")
    bus.subscribe(topic, project, group="projection", max_attempts=1, dedupe=MemoryClaims())
    try:
        async with bus:
            cid = new_id()
            with provider.get_tracer("test").start_as_current_span("click"):
                await bus.publish(topic, new_envelope("T", {}, click=ClickContext(cid)))

            async def dead() -> bool:
                await store.flush()
                return any(e.stage == "dead_lettered" for e in await store.read(cid))

            await until(dead, "the command dead-lettered")
            broken[0] = False
            cli = [sys.executable, "-m", "clicktrace", "resend", cid, "--store", REDIS]
            code, out, err = await _run([*cli, "--prefix", prefix, "--bus", REDIS])
            assert (code, err) == (0, ""), out
            assert out == f"{cid} sent again to {topic} (attempt 2)\n"
            await until(lambda: asyncio.sleep(0, applied[0]), "the resend applied")
            code, out, _ = await _run([*cli, "--prefix", prefix, "--bus", REDIS])
            assert code == 1 and "not_dead_lettered" in out
            code, _, err = await _run([*cli, "--prefix", prefix])
            assert code == 2 and "--bus" in err  # no bus named
    finally:
        use(previous)
        await store.aclose()
    assert applied == [1]


async def _run(argv: list[str]) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CLICKTRACE_BUS_URL",)}
    proc = await asyncio.create_subprocess_exec(*argv, stdout=PIPE, stderr=PIPE, env=env)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()
