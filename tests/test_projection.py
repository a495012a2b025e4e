"""confirm / reject tell the envelope's tab, and only that tab; without a tab (a command sent
by curl) they log a line and return None; reject_on_dead_letter closes a failed message's loop;
confirm_or_reject tells what a handler returned or the Rejected it raised."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import pytest

from clicktrace import (
    MemoryBus,
    Rejected,
    confirm,
    confirm_or_reject,
    new_envelope,
    reject,
    reject_on_dead_letter,
)
from clicktrace.bus import Backoff
from clicktrace.claims import Outcome
from clicktrace.context import ClickContext
from clicktrace.envelope import Envelope
from clicktrace.ids import new_id
from clicktrace.projection import dead_letter_outcome, send_outcome
from clicktrace.testing import unique_name

WAIT = 10.0


@dataclass
class Sent:
    """An in-memory Notify: what would have gone to each tab."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(
        self,
        client_id: str,
        *,
        correlation_id: str,
        status: str,
        type: str | None = None,
        data: Any = None,
        error: dict[str, str] | None = None,
        version: int | None = None,
        key: str | None = None,
    ) -> int:
        call = {
            "client_id": client_id,
            "correlation_id": correlation_id,
            "status": status,
            "type": type,
            "data": data,
            "error": error,
        }
        if version is not None or key is not None:
            call.update(version=version, key=key)
        self.calls.append(call)
        self.arrived.set()
        return len(self.calls)


def from_tab(
    client_id: str | None, type: str = "TodoAdded", deadline_ms: int | None = None
) -> Envelope:
    click = ClickContext(
        correlation_id=new_id(), causation_id=None, client_id=client_id, deadline_ms=deadline_ms
    )
    return new_envelope(type, {"title": "milk"}, click=click)


async def test_confirm_tells_the_tab_in_the_envelope_metadata() -> None:
    sent, tab = Sent(), new_id()
    envelope = from_tab(tab)
    assert await confirm(sent, envelope, data={"id": 1}) == 1
    assert sent.calls == [
        {
            "client_id": tab,
            "correlation_id": envelope.metadata.correlation_id,
            "status": "confirmed",
            "type": "TodoAdded",
            "data": {"id": 1},
            "error": None,
        }
    ]


async def test_reject_carries_the_code_and_a_bounded_message() -> None:
    sent = Sent()
    await reject(sent, from_tab(new_id()), "title_taken", "x" * 1000)
    error = sent.calls[0]["error"]
    assert sent.calls[0]["status"] == "rejected"
    assert error["code"] == "title_taken"
    assert len(error["message"]) == 200


async def test_without_a_tab_nothing_is_sent_and_a_line_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sent = Sent()
    envelope = from_tab(None)
    with caplog.at_level(logging.INFO, logger="clicktrace.projection"):
        assert await confirm(sent, envelope) is None
        assert await reject(sent, envelope, "nope", "no") is None
    assert sent.calls == []
    assert [r.getMessage() for r in caplog.records] == [
        f"{status} '{envelope.metadata.correlation_id}': no tab to tell (the command carried no "
        "client token)"
        for status in ("confirmed", "rejected")
    ]


async def test_a_message_the_consumer_gives_up_on_is_rejected_to_its_tab() -> None:
    sent, bus, tab = Sent(), MemoryBus(), new_id()
    topic = unique_name("todos")

    async def failing(envelope: Envelope) -> None:
        raise RuntimeError("the read model is gone")

    bus.subscribe(
        topic,
        failing,
        group="projection",
        max_attempts=2,
        backoff=Backoff(initial=0, maximum=0),
        on_dead_letter=reject_on_dead_letter(sent),
    )
    envelope = from_tab(tab)
    async with bus:
        await bus.publish(topic, envelope)
        await asyncio.wait_for(sent.arrived.wait(), WAIT)
    call = sent.calls[0]
    assert (call["client_id"], call["status"]) == (tab, "rejected")
    assert call["correlation_id"] == envelope.metadata.correlation_id
    # A code and a generic message: the exception text is the server's, not the tab's.
    assert call["error"] == {
        "code": "processing_failed",
        "message": "The command could not be processed.",
    }
    assert "read model" not in str(call)


async def test_a_late_message_is_rejected_as_deadline_exceeded() -> None:
    sent = Sent()
    await reject_on_dead_letter(sent)(from_tab(new_id()), "deadline_exceeded")
    assert sent.calls[0]["error"] == {
        "code": "deadline_exceeded",
        "message": "The command was not applied before its deadline.",
    }


@pytest.mark.parametrize(
    "reason",
    [
        "RuntimeError: the projection cannot handle seat 13",
        'CharacterNotInRepertoireError: invalid byte sequence for encoding "UTF8": 0x00',
    ],
)
async def test_the_reason_a_message_was_dead_lettered_never_reaches_the_tab(reason: str) -> None:
    sent = Sent()
    await reject_on_dead_letter(sent)(from_tab(new_id()), reason)
    (call,) = sent.calls
    assert call["error"]["code"] == "processing_failed"
    assert reason not in str(call) and "Error" not in str(call)


async def test_types_limit_the_hook_to_the_envelopes_it_names() -> None:
    sent = Sent()
    hook = reject_on_dead_letter(sent, types=["TodoAdded"])
    await hook(from_tab(new_id(), type="SomethingElse"), "boom")
    assert sent.calls == []
    await hook(from_tab(new_id()), "boom")
    assert len(sent.calls) == 1


async def test_send_outcome_tells_the_tab_a_kept_outcome_and_nothing_for_none() -> None:
    sent, tab = Sent(), new_id()
    envelope = from_tab(tab)
    kept = Outcome.rejected("name_taken", "taken", data={"id": 3})
    assert await send_outcome(sent, envelope, kept) == 1
    assert await send_outcome(sent, envelope, None) is None
    assert sent.calls == [
        {
            "client_id": tab,
            "correlation_id": envelope.metadata.correlation_id,
            "status": "rejected",
            "type": "TodoAdded",
            "data": {"id": 3},
            "error": {"code": "name_taken", "message": "taken"},
        }
    ]


async def test_send_outcome_and_confirm_carry_the_version_of_the_state_they_confirm() -> None:
    sent, tab = Sent(), new_id()
    envelope = from_tab(tab)
    await send_outcome(sent, envelope, Outcome.confirmed({"id": 7}), version=12, key="seat:7")
    await confirm(sent, envelope, data={"id": 7}, version=13)
    assert [(c["version"], c["key"]) for c in sent.calls] == [(12, "seat:7"), (13, None)]


async def test_without_a_version_a_notify_of_the_apps_own_is_called_as_before() -> None:
    calls: list[dict[str, Any]] = []

    async def plain(client_id: str, *, correlation_id: str, status: str, **rest: Any) -> int:
        calls.append(rest)
        return 1

    await send_outcome(plain, from_tab(new_id()), Outcome.confirmed({"id": 7}))
    assert "version" not in calls[0] and "key" not in calls[0]


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        ("deadline_exceeded", "deadline_exceeded"),
        ("RuntimeError: boom at SELECT * FROM secrets", "processing_failed"),
        ("delivered 6 times without completing", "processing_failed"),
    ],
)
def test_the_dead_letter_outcome_is_the_rejection_the_hook_sends(reason: str, code: str) -> None:
    outcome = dead_letter_outcome(reason)
    assert outcome.status == "rejected" and outcome.error is not None
    assert outcome.error["code"] == code
    assert "SELECT" not in outcome.error["message"]  # the reason stays on the server


async def test_what_a_handler_returns_is_confirmed_and_what_it_rejects_is_rejected() -> None:
    sent, bus, tab = Sent(), MemoryBus(), new_id()
    topic = unique_name("todos")
    titles: list[str] = []

    async def project(envelope: Envelope) -> Any:
        title = envelope.payload["title"]
        if title in titles:
            raise Rejected("duplicate", f"{title!r} is already on the list", data=titles)
        titles.append(title)
        return {"title": title}

    bus.subscribe(topic, confirm_or_reject(sent, project), group="projection")
    first, second = from_tab(tab), from_tab(tab)
    async with bus:
        await bus.publish(topic, first)
        await bus.publish(topic, second)
        while len(sent.calls) < 2:
            await asyncio.wait_for(sent.arrived.wait(), WAIT)
            sent.arrived.clear()  # then the count: a call after the clear sets it again
    confirmed, rejected = sent.calls
    assert (confirmed["status"], confirmed["data"]) == ("confirmed", {"title": "milk"})
    assert confirmed["correlation_id"] == first.metadata.correlation_id
    assert rejected["status"] == "rejected"
    assert rejected["error"] == {"code": "duplicate", "message": "'milk' is already on the list"}
    assert rejected["data"] == ["milk"]
    assert rejected["correlation_id"] == second.metadata.correlation_id


async def test_a_returned_outcome_is_sent_as_it_is_and_none_confirms_without_data() -> None:
    sent = Sent()
    kept = Outcome.rejected("name_taken", "taken")

    async def replayed(envelope: Envelope) -> Outcome:
        return kept

    async def nothing(envelope: Envelope) -> None:
        return None

    await confirm_or_reject(sent, replayed)(from_tab(new_id()))
    await confirm_or_reject(sent, nothing)(from_tab(new_id()))
    assert [(c["status"], c["data"], c["error"]) for c in sent.calls] == [
        ("rejected", None, {"code": "name_taken", "message": "taken"}),
        ("confirmed", None, None),
    ]


async def test_any_other_exception_is_the_buses_to_retry_and_dead_letter() -> None:
    sent, bus, tab = Sent(), MemoryBus(), new_id()
    topic = unique_name("todos")

    async def failing(envelope: Envelope) -> None:
        raise RuntimeError("the read model is gone")

    bus.subscribe(
        topic,
        confirm_or_reject(sent, failing),
        group="projection",
        max_attempts=2,
        backoff=Backoff(initial=0, maximum=0),
        on_dead_letter=reject_on_dead_letter(sent),
    )
    async with bus:
        await bus.publish(topic, from_tab(tab))
        await asyncio.wait_for(sent.arrived.wait(), WAIT)
    (call,) = sent.calls
    assert call["error"]["code"] == "processing_failed"


def test_a_rejection_is_checked_when_it_is_made() -> None:
    with pytest.raises(TypeError, match="code"):
        Rejected("", "no")
    with pytest.raises(TypeError, match="message"):
        Rejected("nope", None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="handler"):
        confirm_or_reject(Sent(), "not a handler")  # type: ignore[arg-type]
    assert Rejected("nope", "No.", data=[1]).outcome == Outcome.rejected("nope", "No.", [1])
