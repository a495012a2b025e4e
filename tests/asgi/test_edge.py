"""The edge made exact (issue 9, findings 3 and 8): refused tokens on commands, optional
whitespace around the ids, the Level 2 random-trace-id flag, and span names of static routes.
The whitespace cases also run through real uvicorn with httptools, which passes OWS on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send

from clicktrace.asgi import ClicktraceMiddleware
from clicktrace.commands import accepted, invalid_client
from clicktrace.propagation import parse_traceparent
from clicktrace.testing import free_port

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
CORRELATION = "01JD8X3Q7E8W5V4T2N9R6M0K1A"
CLIENT = "01JD8X3Q7E8W5V4T2N9R6M0K1C"


async def command(request: Request) -> Response:
    refused = invalid_client(request)
    return refused if refused is not None else accepted()


async def static(request: Request) -> Response:
    return PlainTextResponse("asset")


def app(tp: TracerProvider | None = None, *, verifier: bool = True) -> Starlette:
    application = Starlette(
        routes=[
            Route("/command", command, methods=["POST"]),
            Mount("/", routes=[Route("/", static)]),
        ]
    )
    application.add_middleware(
        ClicktraceMiddleware,
        tracer_provider=tp or TracerProvider(),
        client_verifier=(lambda token: CLIENT if token == "good" else None) if verifier else None,
    )
    return application


def client(application: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://test")


# --- finding 3: a refused token on a command ---------------------------------------------


@pytest.mark.parametrize(
    "tokens",
    [["forged"], ["good", "good"], ["g" * 2000]],
    ids=["forged-or-expired", "repeated", "oversized"],
)
async def test_a_command_with_a_refused_token_gets_401_invalid_client(tokens: list[str]) -> None:
    headers = [("x-correlation-id", CORRELATION), *(("x-clicktrace-client", t) for t in tokens)]
    async with client(app()) as http:
        answer = await http.post("/command", headers=headers)
    assert answer.status_code == 401
    assert answer.json() == {
        "error": {
            "code": "invalid_client",
            "message": "The client token is invalid or expired: renew the session.",
        },
        "correlation_id": CORRELATION,
    }
    assert answer.headers["x-correlation-id"] == CORRELATION


async def test_a_command_with_a_good_token_or_none_is_accepted() -> None:
    async with client(app()) as http:
        good = await http.post("/command", headers={"x-clicktrace-client": " good\t"})
        none = await http.post("/command")
    assert good.status_code == none.status_code == 202
    assert good.json()["status"] == "accepted"


async def test_without_a_verifier_no_token_is_refused() -> None:
    async with client(app(verifier=False)) as http:
        answer = await http.post("/command", headers={"x-clicktrace-client": "anything"})
    assert answer.status_code == 202


# --- finding 8: optional whitespace, the random flag, static span names ------------------


@pytest.mark.parametrize("pad", [" ", "\t", " \t"])
async def test_whitespace_around_the_correlation_id_and_traceparent_is_ignored(pad: str) -> None:
    for spans in (True, False):
        application = Starlette(routes=[Route("/command", command, methods=["POST"])])
        application.add_middleware(
            ClicktraceMiddleware, tracer_provider=TracerProvider(), spans=spans
        )
        async with client(application) as http:
            answer = await http.post(
                "/command",
                headers={
                    "x-correlation-id": f"{pad}{CORRELATION}{pad}",
                    "traceparent": f"{pad}00-{TRACE}-{SPAN}-01{pad}",
                },
            )
        assert answer.headers["x-correlation-id"] == CORRELATION
        returned = parse_traceparent(answer.headers["traceresponse"])
        assert returned is not None and f"{returned.trace_id:032x}" == TRACE


@pytest.mark.parametrize(("flags", "recorded"), [("03", True), ("02", False)])
async def test_the_random_trace_id_flag_is_accepted_and_propagated(
    flags: str, recorded: bool, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    for spans in (True, False):
        exporter.clear()
        application = Starlette(routes=[Route("/command", command, methods=["POST"])])
        application.add_middleware(ClicktraceMiddleware, tracer_provider=provider, spans=spans)
        async with client(application) as http:
            answer = await http.post(
                "/command", headers={"traceparent": f"00-{TRACE}-{SPAN}-{flags}"}
            )
        assert answer.headers["traceresponse"].endswith(f"-{flags}")
        returned = parse_traceparent(answer.headers["traceresponse"])
        assert returned is not None and f"{returned.trace_id:032x}" == TRACE
        finished = exporter.get_finished_spans()
        if spans and recorded:
            (span,) = finished
            assert span.parent is not None and f"{span.parent.span_id:016x}" == SPAN
            assert span.context is not None and int(span.context.trace_flags) == 3
        else:
            assert finished == ()


async def test_a_route_without_a_template_is_named_by_its_method_alone(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    async with client(app(provider)) as http:
        assert (await http.get("/")).status_code == 200
        assert (await http.post("/command")).status_code == 202
    names = sorted(span.name for span in exporter.get_finished_spans())
    assert names == ["GET /", "POST /command"]  # "GET /" is the mounted route's template
    exporter.clear()
    mounted = Starlette(routes=[Mount("/", app=static_files)])
    mounted.add_middleware(ClicktraceMiddleware, tracer_provider=provider)
    async with client(mounted) as http:
        assert (await http.get("/app.js")).status_code == 200
    (span,) = exporter.get_finished_spans()
    assert span.name == "GET"  # was "GET ": a Mount("/") has the empty template
    assert span.attributes is not None and "http.route" not in span.attributes


async def static_files(scope: Scope, receive: Receive, send: Send) -> None:
    await PlainTextResponse("asset")(scope, receive, send)


# --- the same through real uvicorn + httptools --------------------------------------------


@pytest.fixture
async def server() -> AsyncIterator[int]:
    port = free_port()
    config = uvicorn.Config(
        app(), host="127.0.0.1", port=port, http="httptools", log_level="warning", lifespan="off"
    )
    instance = uvicorn.Server(config)
    task = asyncio.ensure_future(instance.serve())
    while not instance.started:
        await asyncio.sleep(0.01)
    yield port
    instance.should_exit = True
    await task


async def test_httptools_whitespace_no_longer_replaces_the_id_or_starts_a_trace(
    server: int,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    writer.write(
        f"POST /command HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n"
        f"x-correlation-id: {CORRELATION} \t\r\ntraceparent: 00-{TRACE}-{SPAN}-03\t \r\n"
        f"\r\n".encode()
    )
    await writer.drain()
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
    writer.close()
    await writer.wait_closed()
    assert head.startswith("http/1.1 202")
    assert f"x-correlation-id: {CORRELATION.lower()}\r\n" in head
    assert f"traceresponse: 00-{TRACE}-" in head
