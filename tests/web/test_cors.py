"""The CORS helper: the browser may send clicktrace headers and read them back."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from clicktrace.asgi import ClicktraceMiddleware
from clicktrace.web import add_cors, cors_middleware
from clicktrace.web._cors import (
    ALLOW_HEADERS,
    EXPOSE_HEADERS,
    TimingCORSMiddleware,
    cors_options,
)

ORIGIN = "http://localhost:5173"
NEEDED = ("traceparent", "x-correlation-id", "x-clicktrace-client")


async def ok(request: Request) -> Response:
    return PlainTextResponse("ok")


async def boom(request: Request) -> Response:
    raise RuntimeError


def test_options_merge_without_duplicates() -> None:
    options = cors_options([ORIGIN], allow_headers=["X-Custom", "traceparent"], max_age=60)
    assert options["allow_headers"] == [*ALLOW_HEADERS, "x-custom"]
    assert options["expose_headers"] == list(EXPOSE_HEADERS)
    assert options["allow_origins"] == [ORIGIN] and options["max_age"] == 60
    with pytest.raises(TypeError):
        cors_options(ORIGIN)


def test_middleware_entry() -> None:
    entry = cors_middleware([ORIGIN])
    assert entry.kwargs["expose_headers"] == list(EXPOSE_HEADERS)
    assert isinstance(entry.cls, type) and issubclass(entry.cls, TimingCORSMiddleware)


async def test_preflight_and_exposed_headers_even_on_a_500() -> None:
    app = Starlette(routes=[Route("/ok", ok, methods=["POST"]), Route("/boom", boom)])
    app.add_middleware(ClicktraceMiddleware)
    add_cors(app, [ORIGIN])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        preflight = await http.options(
            "/ok",
            headers={
                "origin": ORIGIN,
                "access-control-request-method": "POST",
                "access-control-request-headers": ",".join(NEEDED),
            },
        )
        posted = await http.post("/ok", headers={"origin": ORIGIN})
        failed = await http.get("/boom", headers={"origin": ORIGIN})
    assert preflight.status_code == 200
    allowed = preflight.headers["access-control-allow-headers"].lower()
    assert all(name in allowed for name in NEEDED)
    for response in (posted, failed):
        assert response.headers["access-control-allow-origin"] == ORIGIN
        exposed = response.headers["access-control-expose-headers"].lower()
        assert "x-correlation-id" in exposed and "traceresponse" in exposed
        assert "server-timing" in exposed
        assert "x-correlation-id" in response.headers
        assert response.headers["timing-allow-origin"] == ORIGIN
    assert failed.status_code == 500


async def _timed(request: Request) -> Response:
    return PlainTextResponse("ok", headers={"timing-allow-origin": "https://other.example"})


@pytest.mark.parametrize("origins", [[ORIGIN], ["*"]], ids=["listed", "any"])
async def test_timing_allow_origin_follows_what_cors_allowed(origins: list[str]) -> None:
    app = Starlette(routes=[Route("/ok", ok), Route("/own", _timed)])
    app.add_middleware(ClicktraceMiddleware)
    add_cors(app, origins)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        allowed = await http.get("/ok", headers={"origin": ORIGIN})
        other = await http.get("/ok", headers={"origin": "http://evil.example"})
        same = await http.get("/ok")
        own = await http.get("/own", headers={"origin": ORIGIN})
    assert allowed.headers["timing-allow-origin"] == allowed.headers["access-control-allow-origin"]
    assert allowed.headers["timing-allow-origin"] == ("*" if origins == ["*"] else ORIGIN)
    assert ("timing-allow-origin" in other.headers) is (origins == ["*"])
    assert "timing-allow-origin" not in same.headers
    assert own.headers["timing-allow-origin"] == "https://other.example"  # the app's own kept
