"""The console's routes under ``/clicktrace/console`` (the contract: docs/observe.md, "The
console"): the page and its assets, signing in and out, and the JSON the page reads.

Every route answers a caller without a session the same way, whatever the path, the method
or the id: ``401`` (the sign-in page for the page itself, the protocol's error body for the
rest), before anything is looked up, so nothing says which routes or ids exist. A caller
with a session may also send ``authorization: Bearer <operator token>`` instead (a script; a
browser never sends it by itself). State-changing routes also need ``x-clicktrace-console:
1`` (with ``SameSite=Strict``, a second belt against cross-site requests). A store or a bus
that does not answer is a ``503`` with ``Retry-After`` and one log line naming the error's
type; nothing of an exception reaches the browser.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from clicktrace.bus import Bus, BusNotRunning
from clicktrace.console._auth import (
    COOKIE,
    CSRF_HEADER,
    MAX_TOKEN_LENGTH,
    PAGE_CSP,
    SIGN_IN_CSP,
    Sessions,
    sign_in_page,
)
from clicktrace.console._resend import NotResendable, resend, resendable
from clicktrace.console._views import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    MAX_MINUTES,
    STATES,
    Filters,
    attention,
    detail,
    latency,
    listing,
)
from clicktrace.ids import parse_id
from clicktrace.journal._verdict import Thresholds
from clicktrace.journal._writer import Journal
from clicktrace.protocol import (
    INVALID_REQUEST,
    JOURNAL_UNAVAILABLE,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    RATE_LIMITED,
    UNAUTHORIZED,
)
from clicktrace.web._body import read_body
from clicktrace.web._errors import (
    DEPENDENCY_DOWN,
    RETRY_AFTER_SECONDS,
    Refusal,
    is_outage,
    refuse,
    request_correlation_id,
)
from clicktrace.web._limits import (
    OPERATOR_TOKEN_ENV,
    PeerOf,
    RateLimit,
    RateLimiter,
    is_operator,
    peer_address,
)

__all__ = [
    "CONSOLE_PATH",
    "SIGN_IN_LIMIT",
    "STATIC",
    "TRACE_URL_ENV",
    "console_routes",
]

CONSOLE_PATH = "/clicktrace/console"
TRACE_URL_ENV = "CLICKTRACE_TRACE_URL"
STATIC = Path(__file__).resolve().parent / "_static"
SIGN_IN_LIMIT = RateLimit(per_second=0.2, burst=5)
"""Sign-in attempts per peer: five at once, then one every five seconds."""
MAX_SIGN_IN_BYTES = 4096
MAX_QUERY_LENGTH = 64
MAX_FILTER_LENGTH = 200
_ASSET_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".map": "application/json",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
}
_SECURITY = {
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}
_JSON_HEADERS = {**_SECURITY, "content-security-policy": "default-src 'none'"}
_UNAUTHORIZED = Refusal(401, UNAUTHORIZED, "Sign in to the console.")
_NOT_FOUND = Refusal(404, NOT_FOUND, "Nothing here.")
_NO_CLICK = Refusal(404, NOT_FOUND, "No journal for this correlation id.")
_FORBIDDEN = Refusal(403, "csrf_header_missing", f"Send the header {CSRF_HEADER}: 1.")
_METHOD = Refusal(405, METHOD_NOT_ALLOWED, "Method not allowed here.")
_STORE_DOWN = Refusal(503, JOURNAL_UNAVAILABLE, "The journal store does not answer.")
_NO_BUS = Refusal(409, "no_bus", "This console has no bus to send commands on.")
_TOO_MANY = Refusal(429, RATE_LIMITED, "Too many sign-in attempts: wait a minute.")
_EVERY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_log = logging.getLogger("clicktrace.console")

Endpoint = Callable[[Request], Awaitable[Response]]
Health = Callable[[], Awaitable[Mapping[str, Any]]]
IsPage = bool | Callable[[Request], bool]


def _shell(base: str) -> str:
    """The page: the console's script and style, nothing inline (the CSP allows none)."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        "<title>clicktrace console</title>"
        f'<link rel="stylesheet" href="{base}/assets/console.css">'
        f'<script type="module" src="{base}/assets/console.js"></script>'
        f'</head><body><div id="console"></div></body></html>'
    )


def console_routes(
    journal: Journal,
    *,
    operator_token: str | None = None,
    bus: Bus | None = None,
    trace_url: str | None = None,
    health: Health | None = None,
    thresholds: Thresholds | None = None,
    assets: Path = STATIC,
    path: str = CONSOLE_PATH,
    sign_in_limit: RateLimit = SIGN_IN_LIMIT,
    peer: PeerOf = peer_address,
) -> list[BaseRoute]:
    """The console's routes over ``journal``'s store, behind ``operator_token`` (default
    ``$CLICKTRACE_OPERATOR_TOKEN``; none at all is a ``ValueError``). ``bus`` lets the console
    send dead letters again; ``trace_url`` (default ``$CLICKTRACE_TRACE_URL``) links a click's
    trace, ``{trace_id}`` standing for its id; ``health`` gives the health document the
    console shows (``clicktrace.install`` passes its health route's)."""
    token = operator_token if operator_token is not None else os.environ.get(OPERATOR_TOKEN_ENV)
    if not token:
        raise ValueError(
            "the console needs an operator token: pass operator_token=... or set "
            f"${OPERATOR_TOKEN_ENV}"
        )
    if len(token) > MAX_TOKEN_LENGTH:
        raise ValueError(f"the operator token must be at most {MAX_TOKEN_LENGTH} characters")
    template = trace_url if trace_url is not None else os.environ.get(TRACE_URL_ENV) or None
    if not path.startswith("/") or path.endswith("/"):
        raise ValueError("path must start with '/' and not end with one")
    sessions = Sessions(token)
    limits = thresholds or Thresholds()
    limiter = RateLimiter(sign_in_limit)
    store = journal.store
    shell = _shell(path)

    def signed_in(request: Request) -> bool:
        return sessions.valid(request.cookies.get(COOKIE)) or is_operator(
            request.headers.get("authorization"), token
        )

    def json_refusal(request: Request, refusal: Refusal, **extra: str) -> Response:
        return refuse(refusal, request_correlation_id(request.scope), {**_JSON_HEADERS, **extra})

    def sign_in(request: Request, status: int, error: str | None = None, **extra: str) -> Response:
        headers = {**_SECURITY, "content-security-policy": SIGN_IN_CSP, **extra}
        return HTMLResponse(sign_in_page(f"{path}/session", error), status, headers=headers)

    def guarded(endpoint: Endpoint, methods: tuple[str, ...], page: IsPage = False) -> Endpoint:
        """``endpoint`` behind the session: 401 first (the sign-in page where ``page`` says
        the page was asked for), then the method, then the CSRF header on a POST."""

        async def guard(request: Request) -> Response:
            if not signed_in(request):
                if page is True or (callable(page) and page(request)):
                    return sign_in(request, 401)
                return json_refusal(request, _UNAUTHORIZED)
            if request.method not in methods:
                return json_refusal(request, _METHOD, allow=", ".join(methods))
            if request.method == "POST" and request.headers.get(CSRF_HEADER) != "1":
                return json_refusal(request, _FORBIDDEN)
            return await endpoint(request)

        return guard

    def ok(body: Any) -> Response:
        return JSONResponse(body, headers=_JSON_HEADERS)

    async def store_down(request: Request, exc: Exception) -> Response:
        _log.warning("clicktrace console: the journal store failed: %s", type(exc).__name__)
        return json_refusal(request, _STORE_DOWN, **{"retry-after": str(RETRY_AFTER_SECONDS)})

    # -- the page, its assets, the session ----------------------------------------------

    async def page(request: Request) -> Response:
        headers = {**_SECURITY, "content-security-policy": PAGE_CSP}
        return HTMLResponse(shell, headers=headers)

    async def fallback(request: Request) -> Response:
        if request.path_params.get("rest", "") == "" and request.method in ("GET", "HEAD"):
            return await page(request)  # P/
        return json_refusal(request, _NOT_FOUND)

    async def asset(request: Request) -> Response:
        name = str(request.path_params.get("name", ""))
        parts = name.split("/")
        if len(parts) > 4 or not all(_ASSET_PART.fullmatch(p) for p in parts):
            return json_refusal(request, _NOT_FOUND)
        file = assets.joinpath(*parts)
        kind = _TYPES.get(file.suffix)
        if kind is None or not file.is_file():
            return json_refusal(request, _NOT_FOUND)
        headers = {**_SECURITY, "cache-control": "no-cache"}
        return FileResponse(file, media_type=kind, headers=headers)

    async def session(request: Request) -> Response:
        wants_json = request.headers.get("content-type", "").startswith("application/json")
        if not limiter.allow(peer(request.scope) or "-"):
            retry = {"retry-after": str(round(1 / sign_in_limit.per_second))}
            if wants_json:
                return json_refusal(request, _TOO_MANY, **retry)
            return sign_in(request, 429, "Too many attempts: wait a minute.", **retry)
        body = await read_body(request, MAX_SIGN_IN_BYTES)
        given = ""
        if isinstance(body, bytes):
            given = _token_of(body, wants_json)
        if not sessions.right_token(given):
            if wants_json:
                return json_refusal(request, _UNAUTHORIZED)
            return sign_in(request, 401, "That is not the operator token.")
        response = Response(status_code=303, headers={**_SECURITY, "location": path})
        response.set_cookie(
            COOKIE,
            sessions.cookie(),
            max_age=sessions.seconds,
            path=path,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    async def session_end(request: Request) -> Response:
        response = Response(status_code=303, headers={**_SECURITY, "location": path})
        response.delete_cookie(
            COOKIE,
            path=path,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    # -- data ---------------------------------------------------------------------------

    async def clicks(request: Request) -> Response:
        f = _filters(request.query_params)
        if isinstance(f, Refusal):
            return json_refusal(request, f)
        now = time.time() * 1000.0
        try:
            since = await journal.restarted()
            items = await listing(store, f, now, limits, since)
        except Exception as exc:
            return await store_down(request, exc)
        return ok({"items": items, "now_ms": now})

    async def one(request: Request) -> Response:
        cid = _path_id(request)
        if cid is None:
            return json_refusal(request, _NO_CLICK)
        now = time.time() * 1000.0
        try:
            entries = await store.read(cid)
            if not entries:
                return json_refusal(request, _NO_CLICK)
            since = await journal.restarted()
        except Exception as exc:
            return await store_down(request, exc)
        body = detail(entries, now, limits, since)
        trace_ids = body["trace_ids"]
        body["trace_url"] = (
            template.replace("{trace_id}", trace_ids[0]) if template and trace_ids else None
        )
        body["resendable"] = bus is not None and resendable(entries)
        return ok(body)

    async def send_again(request: Request) -> Response:
        cid = _path_id(request)
        if cid is None:
            return json_refusal(request, _NO_CLICK)
        if bus is None:
            return json_refusal(request, _NO_BUS)
        try:
            done = await resend(store, bus, cid, thresholds=limits)
        except NotResendable as exc:
            status = 404 if exc.code == "not_found" else 409
            return json_refusal(request, Refusal(status, exc.code, exc.message))
        except Exception as exc:  # the bus or the store did not answer, or a fault of ours
            if is_outage(exc) or isinstance(exc, BusNotRunning):
                _log.warning("clicktrace console: resend failed: %s", type(exc).__name__)
            else:  # not a dependency being away: worth its traceback, in the log only
                _log.exception("clicktrace console: resend failed")
            return json_refusal(
                request, DEPENDENCY_DOWN, **{"retry-after": str(RETRY_AFTER_SECONDS)}
            )
        _log.info("clicktrace console: %s sent again (attempt %d)", cid, done.attempt)
        return JSONResponse(
            {"correlation_id": cid, "attempt": done.attempt}, 202, headers=_JSON_HEADERS
        )

    async def needs_a_person(request: Request) -> Response:
        now = time.time() * 1000.0
        try:
            since = await journal.restarted()
            return ok(await attention(store, now, limits, since))
        except Exception as exc:
            return await store_down(request, exc)

    async def stage_latency(request: Request) -> Response:
        raw = request.query_params.get("minutes", "15")
        minutes = int(raw) if raw.isdigit() and len(raw) <= 3 else 0
        if not 1 <= minutes <= MAX_MINUTES:
            message = f"minutes must be a whole number from 1 to {MAX_MINUTES}."
            return json_refusal(request, Refusal(400, INVALID_REQUEST, message))
        now = time.time() * 1000.0
        try:
            since = await journal.restarted()
            return ok(await latency(store, minutes, now, limits, since))
        except Exception as exc:
            return await store_down(request, exc)

    async def health_report(request: Request) -> Response:
        if health is None:
            return json_refusal(request, _NOT_FOUND)
        return ok(await health())

    get, post, any_method = ("GET", "HEAD"), ("POST",), ("GET", "HEAD", "POST")

    def guard(
        route: str, endpoint: Endpoint, methods: tuple[str, ...], page: IsPage = False
    ) -> Route:
        # Every method reaches the guard: a 405 before the 401 would say the route exists.
        return Route(route, guarded(endpoint, methods, page), methods=_EVERY_METHOD)

    return [
        guard(path, page, get, page=True),
        Route(f"{path}/session", session, methods=["POST"]),
        guard(f"{path}/session/end", session_end, post),
        guard(f"{path}/assets/{{name:path}}", asset, get),
        guard(f"{path}/api/clicks", clicks, get),
        guard(f"{path}/api/clicks/{{correlation_id}}", one, get),
        guard(f"{path}/api/clicks/{{correlation_id}}/resend", send_again, post),
        guard(f"{path}/api/attention", needs_a_person, get),
        guard(f"{path}/api/latency", stage_latency, get),
        guard(f"{path}/api/health", health_report, get),
        guard(f"{path}/{{rest:path}}", fallback, any_method, page=_is_page_with_slash),
    ]


def _is_page_with_slash(request: Request) -> bool:
    return bool(request.path_params.get("rest", "") == "")


def _path_id(request: Request) -> str | None:
    raw = request.path_params.get("correlation_id", "")
    return parse_id(raw) if isinstance(raw, str) and len(raw) <= 64 else None


def _token_of(body: bytes, as_json: bool) -> str:
    """The token a sign-in sent (``""`` when none can be read). Never raises."""
    try:
        if as_json:
            data = json.loads(body)
            value = data.get("token") if isinstance(data, dict) else None
            return value if isinstance(value, str) else ""
        for key, value in parse_qsl(body.decode("utf-8"), max_num_fields=8):
            if key == "token":
                return value
    except (ValueError, UnicodeDecodeError):
        return ""
    return ""


def _filters(query: Mapping[str, str]) -> Filters | Refusal:
    """The listing's filters from a query string, or a 400 naming the first bad one."""

    def bad(message: str) -> Refusal:
        return Refusal(400, INVALID_REQUEST, message)

    q = query.get("q") or None
    if q is not None and len(q) > MAX_QUERY_LENGTH:
        return bad(f"q must be at most {MAX_QUERY_LENGTH} characters.")
    state = query.get("verdict") or None
    if state is not None and state not in STATES:
        return bad(f"verdict must be one of {', '.join(sorted(STATES))}.")
    action = query.get("action") or None
    client = query.get("client") or None
    if any(v is not None and len(v) > MAX_FILTER_LENGTH for v in (action, client)):
        return bad(f"action and client must be at most {MAX_FILTER_LENGTH} characters.")
    since_ms = None
    raw_since = query.get("since_ms")
    if raw_since:
        try:
            since_ms = float(raw_since)
        except ValueError:
            since_ms = -1.0
        if not 0 <= since_ms < 1e15:
            return bad("since_ms must be a Unix time in milliseconds.")
    raw_limit = query.get("limit")
    limit = DEFAULT_LIMIT
    if raw_limit:
        limit = int(raw_limit) if raw_limit.isdigit() and len(raw_limit) <= 4 else 0
        if not 1 <= limit <= MAX_LIMIT:
            return bad(f"limit must be a whole number from 1 to {MAX_LIMIT}.")
    return Filters(q, state, action, client, since_ms, limit)
