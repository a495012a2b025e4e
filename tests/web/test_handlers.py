"""exception_handlers(): Starlette's and FastAPI's own refusals in the protocol's shape."""

from __future__ import annotations

import asyncio

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
from clicktrace.testing import free_port
from clicktrace.web._handlers import (
    MAX_MESSAGE_LENGTH,
    RETRY_AFTER_SECONDS,
    exception_handlers,
    validation_message,
)

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
