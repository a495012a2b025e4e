"""Hostile Engine.IO / Socket.IO input from raw HTTP, raw WebSocket and python-socketio clients
against a real uvicorn server: answered, closed, one short warning line at most."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
import socketio
from engineio.payload import Payload
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.types import ASGIApp
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from clicktrace.ids import new_id, parse_id
from clicktrace.notify import Notifier, TokenSigner
from clicktrace.notify.engineio_guard import POLLING_TYPES, packet_ok, payload_ok

SECRET = "clicktrace-test-secret-0123456789"
WAIT = 10.0  # an upper bound for an answer to arrive; never a timing assertion
Serve = Callable[[ASGIApp], Awaitable[str]]


async def start(serve: Serve, **kwargs: Any) -> tuple[Notifier, str]:
    notifier = Notifier(TokenSigner(SECRET), "socketio", **kwargs)
    url = await serve(notifier.asgi(Starlette(routes=notifier.routes)))
    return notifier, url


def eio(url: str, sid: str | None = None, transport: str = "polling") -> str:
    return f"{url}/socket.io/?EIO=4&transport={transport}" + (f"&sid={sid}" if sid else "")


async def handshake(http: httpx.AsyncClient, url: str) -> str:
    response = await http.get(eio(url), timeout=WAIT)
    assert response.status_code == 200 and response.text.startswith("0")
    sid: str = json.loads(response.text[1:])["sid"]
    return sid


async def tab_gets_a_notification(notifier: Notifier, url: str) -> None:
    """A well-behaved python-socketio client is served normally."""
    session = notifier.signer.issue()
    client = socketio.AsyncClient(reconnection=False)
    frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    client.on("clicktrace", frames.put)
    await client.connect(
        url, auth={"token": session.token}, transports=["polling"], wait_timeout=WAIT
    )
    try:
        await notifier.notify(session.client_id, correlation_id=new_id(), status="confirmed")
        assert (await asyncio.wait_for(frames.get(), WAIT))["seq"] == 1
    finally:
        await client.disconnect()


def loud(records: list[logging.LogRecord]) -> list[logging.LogRecord]:
    return [r for r in records if r.levelno >= logging.ERROR or r.exc_info]


@pytest.mark.parametrize("text", ["", "x", "9", "0", "6", "2", "b" + "A" * 5, "4" + "[" * 3000])
def test_packets_a_client_may_not_send_are_refused(text: str) -> None:
    assert not packet_ok(text, POLLING_TYPES)


def test_payloads_are_checked_whole() -> None:
    assert payload_ok(b"") and payload_ok(b"3") and payload_ok(b'40{"token":"t"}\x1e3')
    for body in (b"\xff", b"3\x1e", b"d=3", b"\x1e".join([b"3"] * 17), b"4x\x1ezz"):
        assert not payload_ok(body)


engineio_texts = st.lists(
    st.sampled_from(
        [
            "0",
            "1",
            "2",
            "3",
            "4",
            "5",
            "6",
            "9",
            "b",
            "d=",
            "[",
            "{",
            "40",
            "42",
            '{"token":"t"}',
            "\x1e",
            "probe",
            "\u00e9",
            "\ud800",
            "AAAA",
            "-",
            "",
        ]
    ),
    max_size=12,
).map("".join)


@settings(max_examples=500)
@given(engineio_texts | st.text(max_size=40))
def test_what_the_guard_passes_python_engineio_decodes_and_accepts(text: str) -> None:
    body = text.encode("utf-8", "surrogatepass")
    if not payload_ok(body):
        return
    for pkt in Payload(encoded_payload=body.decode("utf-8")).packets:  # never raises
        assert not pkt.binary and pkt.packet_type in POLLING_TYPES


async def test_malformed_frames_cost_one_short_line_not_a_traceback_each(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    notifier, url = await start(serve)
    async with httpx.AsyncClient(timeout=WAIT) as http:
        for body in (b"zz", b"9", b"4" + b"[" * 3000, b"\xff\xfe", b"6", b""):
            sid = await handshake(http, url)
            response = await http.post(eio(url, sid), content=body)
            assert response.status_code in (200, 400)
        ws_url = eio(url, transport="websocket").replace("http://", "ws://")
        for frame in ("x garbage", "", "6", b"\x00binary", "4" + "[" * 3000):
            async with connect(ws_url) as ws:
                await ws.recv()  # OPEN
                await ws.send(frame)
                with pytest.raises(ConnectionClosed):
                    while True:
                        await asyncio.wait_for(ws.recv(), WAIT)
    # A real python-socketio client sending Socket.IO packets its server cannot decode.
    for raw in ('2["x", {', "2{}", "5-[]", "4", "9", "2" + "[" * 3000):
        client = socketio.AsyncClient(reconnection=False)
        await client.connect(
            url,
            auth={"token": notifier.signer.issue().token},
            transports=["websocket"],
            wait_timeout=WAIT,
        )
        await client.eio.send(raw)
        for _ in range(int(WAIT * 20)):
            if not client.connected:
                break
            await asyncio.sleep(0.05)
        assert not client.connected
        await client.disconnect()
    assert loud(caplog.records) == []
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert 1 <= len(warnings) <= 2  # rate-limited: one line per 10 s
    assert all(len(r.getMessage()) < 200 for r in warnings)
    await tab_gets_a_notification(notifier, url)


async def test_an_oversized_polling_post_is_answered_and_hangs_nothing(serve: Serve) -> None:
    notifier, url = await start(serve)
    async with httpx.AsyncClient(timeout=WAIT) as http:
        sid = await handshake(http, url)
        poll = asyncio.ensure_future(http.get(eio(url, sid)))  # a poll in flight
        await asyncio.sleep(0.2)
        response = await http.post(eio(url, sid), content=b"4" + b"x" * 9000)
        assert response.status_code == 413
        body = response.json()
        assert body["error"]["code"] == "payload_too_large"
        assert body["correlation_id"] == response.headers["x-correlation-id"]
        assert (await poll).status_code == 200  # ended by the session's CLOSE packet
        assert (await http.get(eio(url, sid))).status_code == 400  # the session is gone

        async def chunks() -> Any:  # no content-length: cut off while streaming
            for _ in range(10):
                yield b"4" + b"x" * 1000

        sid = await handshake(http, url)
        assert (await http.post(eio(url, sid), content=chunks())).status_code == 413
    await tab_gets_a_notification(notifier, url)


async def test_a_chunked_post_reaches_engineio_whole(serve: Serve) -> None:
    # python-engineio reads content-length bytes: without one it would read nothing.
    notifier, url = await start(serve)
    token = json.dumps({"token": notifier.signer.issue().token})

    async def chunks() -> Any:
        yield b"40"
        yield token.encode()

    async with httpx.AsyncClient(timeout=WAIT) as http:
        sid = await handshake(http, url)
        assert (await http.post(eio(url, sid), content=chunks())).status_code == 200
        assert (await http.get(eio(url, sid))).text.startswith("40{")  # connected to "/"


async def test_socketio_responses_carry_a_correlation_id(serve: Serve) -> None:
    _, url = await start(serve)
    corr = new_id()
    async with httpx.AsyncClient(timeout=WAIT) as http:
        fresh = await http.get(eio(url))
        echoed = await http.get(eio(url), headers={"x-correlation-id": corr.lower()})
        refused = await http.get(f"{url}/socket.io/?EIO=3&transport=polling")
    assert parse_id(fresh.headers["x-correlation-id"]) == fresh.headers["x-correlation-id"]
    assert echoed.headers["x-correlation-id"] == corr
    assert refused.status_code == 400 and "x-correlation-id" in refused.headers
    ws_url = eio(url, transport="websocket").replace("http://", "ws://")
    async with connect(ws_url) as ws:
        assert ws.response is not None
        assert parse_id(ws.response.headers["x-correlation-id"])


async def test_a_session_that_never_authenticates_is_closed_at_the_deadline(
    serve: Serve,
) -> None:
    _, url = await start(serve, hello_timeout_seconds=0.3)
    async with httpx.AsyncClient(timeout=WAIT) as http:
        sid = await handshake(http, url)
        poll = await http.get(eio(url, sid))  # answered by the CLOSE packet
        assert poll.status_code == 200 and poll.text.split("\x1e")[0] == "1"
        assert (await http.get(eio(url, sid))).status_code == 400
    ws_url = eio(url, transport="websocket").replace("http://", "ws://")
    async with connect(ws_url) as ws:
        await ws.recv()  # OPEN
        assert await asyncio.wait_for(ws.recv(), WAIT) == "1"  # CLOSE
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), WAIT)


async def test_a_session_that_authenticates_in_time_stays(serve: Serve) -> None:
    notifier, url = await start(serve, hello_timeout_seconds=0.3)
    session = notifier.signer.issue()
    client = socketio.AsyncClient(reconnection=False)
    frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    client.on("clicktrace", frames.put)
    await client.connect(
        url, auth={"token": session.token}, transports=["websocket"], wait_timeout=WAIT
    )
    await asyncio.sleep(0.6)  # past the deadline
    await notifier.notify(session.client_id, correlation_id=new_id(), status="confirmed")
    assert (await asyncio.wait_for(frames.get(), WAIT))["seq"] == 1
    await client.disconnect()


async def test_unauthenticated_sessions_are_capped_per_peer(serve: Serve) -> None:
    notifier, url = await start(serve, max_pending_per_peer=3)
    async with httpx.AsyncClient(timeout=WAIT) as http:
        sids = [await handshake(http, url) for _ in range(3)]
        refused = await http.get(eio(url))
        assert refused.status_code == 401
        ws_url = eio(url, transport="websocket").replace("http://", "ws://")
        with pytest.raises(InvalidStatus):  # the WebSocket transport counts the same
            async with connect(ws_url):
                pass
        # Authenticating frees a place.
        token = json.dumps({"token": notifier.signer.issue().token})
        assert (await http.post(eio(url, sids[0]), content=f"40{token}")).status_code == 200
        assert (await http.get(eio(url, sids[0]))).text.startswith("40{")
        sids[0] = await handshake(http, url)
        for sid in sids:  # leaving frees places too
            await http.post(eio(url, sid), content="1")
    # Authenticated sessions do not count: more tabs than the cap connect one after another.
    for _ in range(4):
        await tab_gets_a_notification(notifier, url)


async def test_a_client_that_leaves_the_namespace_loses_the_session(serve: Serve) -> None:
    notifier, url = await start(serve)
    token = json.dumps({"token": notifier.signer.issue().token})
    async with httpx.AsyncClient(timeout=WAIT) as http:
        sid = await handshake(http, url)
        await http.post(eio(url, sid), content=f"40{token}")
        assert (await http.get(eio(url, sid))).text.startswith("40{")
        await http.post(eio(url, sid), content="41")
        answer = await http.get(eio(url, sid))
        assert answer.status_code == 400 or answer.text.split("\x1e")[-1] == "1"
