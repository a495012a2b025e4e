"""The protocol's error responses (clicktrace.web._errors): the error body, refusals with the
correlation id in body and header, outages, and the exception handlers that give Starlette's
and FastAPI's own refusals the protocol's shape."""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping

import httpx
import pytest
from fastapi import FastAPI
from fastapi import HTTPException as FastAPIHTTPException
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from clicktrace.asgi import ClicktraceMiddleware
from clicktrace.context import ClickContext, bound
from clicktrace.ids import parse_id
from clicktrace.testing import free_port
from clicktrace.web._errors import (
    MAX_MESSAGE_LENGTH,
    RETRY_AFTER_SECONDS,
    Refusal,
    error_body,
    error_response,
    exception_handlers,
    refuse,
    send_error,
    validation_message,
)

CORR = "01JD8X3Q7E8W5V4T2N9R6M0K1A"


def test_error_response_uses_the_bound_correlation_id() -> None:
    with bound(ClickContext(CORR)):
        response = error_response(404, "not_found", "No such product.")
    assert response.status_code == 404
    assert response.media_type == "application/json"
    assert json.loads(bytes(response.body)) == {
        "error": {"code": "not_found", "message": "No such product."},
        "correlation_id": CORR,
    }


def test_without_a_context_a_fresh_id_keeps_the_body_valid() -> None:
    body = json.loads(bytes(error_response(400, "invalid_body", "x").body))
    assert parse_id(body["correlation_id"]) == body["correlation_id"]


def test_only_error_statuses() -> None:
    with pytest.raises(ValueError):
        error_response(200, "fine", "not an error")


def test_error_body_escapes_text() -> None:
    body = json.loads(error_body("c", 'quote " and \n newline', CORR))
    assert body["error"]["message"] == 'quote " and \n newline'


async def test_send_error_over_raw_asgi() -> None:
    sent: list[dict[str, object]] = []

    async def send(message: MutableMapping[str, object]) -> None:
        sent.append(dict(message))

    await send_error(send, Refusal(400, "bad", "Bad."), CORR, ((b"x-extra", b"1"),))
    assert sent[0] == {
        "type": "http.response.start",
        "status": 400,
        "headers": [(b"content-type", b"application/json"), (b"x-extra", b"1")],
    }
    assert json.loads(sent[1]["body"]) == {  # type: ignore[arg-type]
        "error": {"code": "bad", "message": "Bad."},
        "correlation_id": CORR,
    }


def test_a_refusal_is_one_value_for_body_response_and_route_answers() -> None:
    refusal = Refusal(409, "conflict", "Taken.")
    assert refusal.body(CORR) == error_body("conflict", "Taken.", CORR)
    with bound(ClickContext(CORR)):
        response = refusal.response()
    assert (response.status_code, response.body) == (409, error_body("conflict", "Taken.", CORR))
    routed = refuse(refusal, CORR, {"retry-after": "1"})
    assert routed.status_code == 409 and routed.body == refusal.body(CORR)
    assert routed.headers["x-correlation-id"] == CORR and routed.headers["retry-after"] == "1"


def test_a_client_librarys_outage_is_known_by_name_and_a_programming_error_is_not() -> None:
    import asyncpg.exceptions
    import nats.errors
    import redis.exceptions

    from clicktrace.web._errors import is_outage

    for outage in (
        redis.exceptions.ConnectionError("down"),
        redis.exceptions.BusyLoadingError("loading"),  # a subclass: matched along the MRO
        asyncpg.exceptions.ConnectionDoesNotExistError("gone"),
        asyncpg.exceptions.CannotConnectNowError("starting"),
        nats.errors.NoServersError(),
        ConnectionRefusedError(),
        TimeoutError(),
    ):
        assert is_outage(outage), outage
    for bug in (ValueError("x"), redis.exceptions.ResponseError("WRONGTYPE"), KeyError("k")):
        assert not is_outage(bug), bug


CLOSED_PORT = free_port()  # reserved for this run and never listened on


def client(app: Starlette) -> httpx.AsyncClient:
    app.add_middleware(ClicktraceMiddleware, spans=False)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def teapot(request: Request) -> Response:
    raise HTTPException(418, "Short and stout.", headers={"x-extra": "1"})


async def not_modified(request: Request) -> Response:
    raise HTTPException(304)


def starlette_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/teapot", teapot),
            Route("/cached", not_modified),
            Route("/only-post", teapot, methods=["POST"]),
        ],
        exception_handlers=exception_handlers(),
    )


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/missing", 404, "not_found"),
        ("GET", "/only-post", 405, "method_not_allowed"),
        ("GET", "/teapot", 418, "i_m_a_teapot"),
    ],
)
async def test_starlette_refusals_get_the_error_shape(
    method: str, path: str, status: int, code: str
) -> None:
    async with client(starlette_app()) as http:
        answer = await http.request(method, path)
    assert answer.status_code == status
    body = answer.json()
    assert body["error"]["code"] == code and body["error"]["message"]
    assert body["correlation_id"] == answer.headers["x-correlation-id"]


async def test_the_exceptions_headers_are_kept_and_a_304_has_no_body() -> None:
    async with client(starlette_app()) as http:
        teapot_answer = await http.get("/teapot")
        cached = await http.get("/cached")
    assert teapot_answer.headers["x-extra"] == "1"
    assert teapot_answer.json()["error"]["message"] == "Short and stout."
    assert cached.status_code == 304 and cached.content == b""


class Rename(BaseModel):
    name: str


def fastapi_app() -> FastAPI:
    api = FastAPI(exception_handlers=exception_handlers())

    @api.post("/products/{product_id}/rename")
    async def rename(product_id: int, command: Rename) -> dict[str, str]:
        if product_id == 0:
            raise FastAPIHTTPException(404, "No such product.")
        return {"name": command.name}

    return api


async def test_fastapi_validation_errors_get_the_error_shape_without_echoing_input() -> None:
    async with client(fastapi_app()) as http:
        answer = await http.post("/products/abc/rename", json={"nom": "<script>secret"})
        missing = await http.post("/products/0/rename", json={"name": "x"})
    assert answer.status_code == 422
    body = answer.json()
    assert body["error"]["code"] == "invalid_request"
    assert "path.product_id" in body["error"]["message"]
    assert "body.name" in body["error"]["message"]
    assert "secret" not in answer.text
    assert body["correlation_id"] == answer.headers["x-correlation-id"]
    assert missing.status_code == 404
    assert missing.json()["error"] == {"code": "not_found", "message": "No such product."}


def test_a_validation_message_is_bounded() -> None:
    errors = [{"loc": ("body", "x" * 500), "msg": "m" * 500} for _ in range(10)]
    message = validation_message(errors)
    assert len(message) <= MAX_MESSAGE_LENGTH
    assert validation_message([]) == "The request is invalid."


async def refused(request: Request) -> Response:
    # A port nobody listens on: what a database or broker that is down looks like.
    await asyncio.open_connection("127.0.0.1", CLOSED_PORT)
    raise AssertionError("connected to a port nobody listens on")


async def too_slow(request: Request) -> Response:
    await asyncio.wait_for(asyncio.Event().wait(), 0)
    raise AssertionError("an event nobody sets was set")


@pytest.mark.parametrize("path", ["/refused", "/too-slow"])
async def test_a_dependency_that_is_down_is_503_with_retry_after_not_500(
    path: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = Starlette(
        routes=[Route("/refused", refused), Route("/too-slow", too_slow)],
        exception_handlers=exception_handlers(),
    )
    async with client(app) as http:
        answer = await http.get(path)
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == str(RETRY_AFTER_SECONDS)
    body = answer.json()
    assert body["error"]["code"] == "unavailable"
    assert body["correlation_id"] == answer.headers["x-correlation-id"]
    assert "Errno" not in answer.text and str(CLOSED_PORT) not in answer.text
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.exc_info]


def test_every_correlation_id_header_is_one_spelling_and_the_request_id_is_kept_when_valid() -> (
    None
):
    from clicktrace.web._errors import correlation_header, request_correlation_id

    assert correlation_header(CORR) == (b"x-correlation-id", CORR.encode())
    scope = {"type": "http", "headers": [(b"x-correlation-id", b" " + CORR.lower().encode())]}
    assert request_correlation_id(scope) == CORR
    with bound(ClickContext("01JD8X3Q7E8W5V4T2N9R6M0K1B")):
        assert request_correlation_id(scope) == "01JD8X3Q7E8W5V4T2N9R6M0K1B"  # the bound one
    twice = {"type": "http", "headers": [(b"x-correlation-id", CORR.encode())] * 2}
    assert parse_id(request_correlation_id(twice)) not in (None, CORR)  # refused: a fresh one
