"""``clicktrace.health.serve``: a worker's health listener, talked to by a real HTTP client and
by raw sockets that misbehave."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import httpx
import pytest
from starlette.applications import Starlette

from clicktrace.bus import MemoryBus
from clicktrace.health import (
    Check,
    Result,
    bus_check,
    correlations_check,
    health_route,
    journal_check,
    serve,
)
from clicktrace.health import _listener as health_listener
from clicktrace.journal import Entry, Journal, MemoryStore, Thresholds, create_journal
from clicktrace.testing import free_port

TOKEN = "worker-operator-token-0123456789"
OPERATOR = {"authorization": f"Bearer {TOKEN}"}
CID = "01JD8X3Q7E8W5V4T2N9R6M0K1A"
WAIT = 10.0  # an upper bound for anything to arrive, never a timing assertion


@asynccontextmanager
async def listening(checks: Sequence[Check], **options: object) -> AsyncIterator[str]:
    options.setdefault("operator_token", TOKEN)
    server = await serve(checks, "127.0.0.1", 0, **options)  # type: ignore[arg-type]
    async with server:
        yield f"http://127.0.0.1:{server.port}"


async def raw(url: str, request: bytes) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        return await asyncio.wait_for(reader.read(), WAIT)  # the listener closes after one answer
    except ConnectionResetError:  # closed before reading what was sent: unanswered too
        return b""
    finally:
        writer.close()


async def test_a_worker_answers_a_real_http_client_like_the_app_route() -> None:
    bus = MemoryBus()
    await bus.start()
    journal = Journal(MemoryStore())
    try:
        async with (
            listening([bus_check(bus), journal_check(journal)]) as url,
            httpx.AsyncClient(base_url=url) as http,
        ):
            anonymous = await http.get("/clicktrace/health")
            operator = await http.get("/clicktrace/health", headers=OPERATOR)
            with_query = await http.get("/clicktrace/health?verbose=1")
    finally:
        await bus.close()
    assert (anonymous.status_code, anonymous.json()) == (200, {"status": "Healthy"})
    assert anonymous.headers["content-type"] == "application/json"
    assert anonymous.headers["cache-control"] == "no-store"
    body = operator.json()
    assert body["status"] == "Healthy"
    assert set(body["entries"]) == {"bus", "journal"}
    assert body["entries"]["bus"]["data"]["round_trip_ms"] >= 0
    assert with_query.json() == {"status": "Healthy"}


async def test_a_journal_store_that_is_down_is_degraded_and_named_only_to_the_operator() -> None:
    closed = free_port()  # held by this run, and nothing listens on it
    down = create_journal(f"redis://127.0.0.1:{closed}/0", timeout=0.2)
    journal = Journal(MemoryStore())
    old = time.time() * 1000 - 60_000
    journal.put(Entry(correlation_id=CID, stage="accepted", at=old, trace_id="a" * 32))
    checks = [
        journal_check(down),
        correlations_check(journal, thresholds=Thresholds(stuck_after_ms=1000)),
    ]
    try:
        async with listening(checks) as url, httpx.AsyncClient(base_url=url) as http:
            anonymous = await http.get("/clicktrace/health")
            operator = await http.get("/clicktrace/health", headers=OPERATOR)
    finally:
        await down.aclose()
    assert (anonymous.status_code, anonymous.json()) == (200, {"status": "Degraded"})
    for secret in (str(closed), "127.0.0.1", CID):
        assert secret not in anonymous.text
    assert operator.status_code == 200
    assert str(closed) in operator.json()["entries"]["journal"]["data"]["last_error"]
    assert operator.json()["entries"]["correlations"]["data"]["stuck"] == 1


async def test_an_unreachable_bus_is_503_with_retry_after() -> None:
    async with (
        listening([bus_check(MemoryBus())], interval=3.0) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        r = await http.get("/clicktrace/health")
        head = await http.head("/clicktrace/health")
    assert (r.status_code, r.json()) == (503, {"status": "Unhealthy"})
    assert r.headers["retry-after"] == "3"
    assert (head.status_code, head.content) == (503, b"")


async def test_pollers_share_one_run_per_interval() -> None:
    runs = 0

    async def counted() -> Result:
        nonlocal runs
        runs += 1
        return Result("Healthy", "counted")

    async with (
        listening([Check("counted", counted)], interval=3600) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        answers = await asyncio.gather(*(http.get("/clicktrace/health") for _ in range(30)))
    assert {r.status_code for r in answers} == {200}
    assert runs == 1


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /elsewhere HTTP/1.1\r\nhost: x\r\n\r\n", b"404"),
        (b"GET / HTTP/1.1\r\n\r\n", b"404"),
        (b"POST /clicktrace/health HTTP/1.1\r\ncontent-length: 0\r\n\r\n", b"405"),
        (b"DELETE /clicktrace/health HTTP/1.0\r\n\r\n", b"405"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", b"400"),
        (b"GET /clicktrace/health\r\n\r\n", b"400"),
        (b"GET /clicktrace/health SPDY/3\r\n\r\n", b"400"),
        (b"GET /clicktrace/health HTTP/1.1\r\nx: " + b"a" * 9000 + b"\r\n\r\n", b"431"),
    ],
    ids=["other-path", "root", "post", "delete", "tls", "http-0.9", "not-http", "huge-head"],
)
async def test_anything_but_a_health_request_gets_a_short_error(
    request_bytes: bytes, status: bytes
) -> None:
    async with listening([Check("ok", _healthy)]) as url:
        answer = await raw(url, request_bytes)
    assert answer.split(b" ", 2)[1] == status
    assert b"connection: close" in answer
    assert b"Traceback" not in answer


async def _healthy() -> Result:
    return Result("Healthy", "fine")


async def test_a_client_that_never_finishes_its_request_is_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(health_listener, "READ_TIMEOUT", 0.2)
    async with listening([Check("ok", _healthy)]) as url:
        assert await raw(url, b"GET /clicktrace/health HTTP/1.1\r\n") == b""
        assert (await raw(url, b"GET /clicktrace/health HTTP/1.1\r\n\r\n")).startswith(
            b"HTTP/1.1 200 OK\r\n"
        )


async def test_connections_beyond_the_bound_are_closed_unanswered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(health_listener, "MAX_CONNECTIONS", 2)
    async with listening([Check("ok", _healthy)]) as url:
        host, port = url.removeprefix("http://").split(":")
        idle = [await asyncio.open_connection(host, int(port)) for _ in range(2)]
        refused = b"pending"
        deadline = asyncio.get_running_loop().time() + WAIT
        while refused != b"" and asyncio.get_running_loop().time() < deadline:
            refused = await raw(url, b"GET /clicktrace/health HTTP/1.1\r\n\r\n")
        for _, writer in idle:
            writer.close()
        answered = b""
        while not answered and asyncio.get_running_loop().time() < deadline:
            answered = await raw(url, b"GET /clicktrace/health HTTP/1.1\r\n\r\n")
    assert refused == b""
    assert answered.startswith(b"HTTP/1.1 200 OK\r\n")


async def test_closing_ends_the_connections_still_open() -> None:
    server = await serve([Check("ok", _healthy)], "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /clicktrace/health HTTP/1.1\r\n")  # never finished
    await server.aclose()
    try:
        rest = await asyncio.wait_for(reader.read(), WAIT)
    except ConnectionResetError:  # closed with the request unread: the kernel resets
        rest = b""
    assert rest == b""
    writer.close()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", server.port)


async def test_the_listener_and_the_app_route_give_the_same_answers() -> None:
    # Two HTTP implementations of one endpoint: pinned to each other, header by header.
    checks = [bus_check(MemoryBus()), Check("ok", _healthy)]  # Unhealthy: never started
    app = Starlette(routes=[health_route(checks, operator_token=TOKEN)])
    callers: list[dict[str, str]] = [{}, OPERATOR, {"authorization": "Bearer nope"}]
    async with (
        listening(checks) as url,
        httpx.AsyncClient(base_url=url) as over_tcp,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as in_app,
    ):
        for headers in callers:
            for method in ("GET", "HEAD"):
                mine = await over_tcp.request(method, "/clicktrace/health", headers=headers)
                theirs = await in_app.request(method, "/clicktrace/health", headers=headers)
                assert mine.status_code == theirs.status_code == 503
                for name in ("content-type", "cache-control", "retry-after"):
                    assert mine.headers[name] == theirs.headers[name], name
                if method == "HEAD":
                    assert mine.content == theirs.content == b""
                elif headers is OPERATOR:
                    ours, route = mine.json(), theirs.json()
                    assert ours["status"] == route["status"]
                    for name, entry in ours["entries"].items():
                        assert entry["status"] == route["entries"][name]["status"]
                        assert entry["description"] == route["entries"][name]["description"]
                else:
                    assert mine.content == theirs.content == b'{"status":"Unhealthy"}'
