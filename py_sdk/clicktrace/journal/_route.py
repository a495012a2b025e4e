"""``GET /clicktrace/journal/{correlation_id}``: where a click went.

A tab sees its own correlation ids (its ``x-clicktrace-client`` token); an operator token
(``authorization: Bearer …``, from the ``operator_token`` setting or the
``CLICKTRACE_OPERATOR_TOKEN`` environment variable) sees every id. Anything else, a malformed
or oversized id included, gets the same 404 as an id nobody recorded, without the store being
asked: the answer never tells whether an id exists.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clicktrace import context as click_context
from clicktrace.ids import new_id, parse_id
from clicktrace.journal._entry import BROWSER_STAGES, Entry
from clicktrace.journal._verdict import Thresholds, answer
from clicktrace.journal._writer import Journal
from clicktrace.protocol import CLIENT_HEADER
from clicktrace.web._errors import RETRY_AFTER_SECONDS, error_body

__all__ = [
    "JOURNAL_PATH",
    "MAX_TOKEN_LENGTH",
    "OPERATOR_TOKEN_ENV",
    "is_operator",
    "journal_route",
    "operator",
    "owner",
]

JOURNAL_PATH = "/clicktrace/journal/{correlation_id}"
OPERATOR_TOKEN_ENV = "CLICKTRACE_OPERATOR_TOKEN"
MAX_TOKEN_LENGTH = 1024
_log = logging.getLogger("clicktrace.journal")


def _error(status: int, code: str, message: str) -> Response:
    click = click_context.current()
    cid = click.correlation_id if click is not None else new_id()
    return Response(
        error_body(code, message, cid),
        status,
        media_type="application/json",
        headers={"x-correlation-id": cid, "cache-control": "no-store"},
    )


def is_operator(authorization: str | None, token: str | None) -> bool:
    """Whether an ``authorization`` header value carries ``token`` as a bearer token
    (compared in constant time; no token configured: nobody is)."""
    if not token or not authorization or len(authorization) > MAX_TOKEN_LENGTH:
        return False
    if authorization[:7].lower() != "bearer ":
        return False
    return hmac.compare_digest(authorization[7:].strip().encode(), token.encode())


def operator(request: Request, token: str | None) -> bool:
    """Whether the request carries the operator token."""
    return is_operator(request.headers.get("authorization"), token)


def owner(entries: list[Entry]) -> str | None:
    """The tab a correlation id belongs to: the client id the server verified for it (a
    browser's spans alone may claim any id, so they decide only when nothing else exists and
    they all agree). The earliest server entry decides: anyone can send a command naming an
    id they learned, and the edge journals it under their client, later than the owner's."""
    verified = [e for e in entries if e.client_id and e.stage not in BROWSER_STAGES]
    if verified:
        return min(verified, key=lambda e: e.at).client_id
    claimed = {e.client_id for e in entries}
    return claimed.pop() if len(claimed) == 1 else None


def journal_route(
    journal: Journal,
    *,
    client_verifier: Callable[[str], str | None] | None = None,
    operator_token: str | None = None,
    thresholds: Thresholds | None = None,
    path: str = JOURNAL_PATH,
) -> Route:
    """The journal query route. ``client_verifier`` maps a tab's token to its client id
    (``TokenSigner.verify``); ``operator_token`` defaults to ``$CLICKTRACE_OPERATOR_TOKEN``."""
    token = operator_token if operator_token is not None else os.environ.get(OPERATOR_TOKEN_ENV)
    limits = thresholds or Thresholds()

    def tab(request: Request) -> str | None:
        raw = request.headers.get(CLIENT_HEADER)
        if client_verifier is None or not raw or len(raw) > MAX_TOKEN_LENGTH:
            return None
        try:
            return parse_id(client_verifier(raw))
        except Exception:  # a verifier choking on a hostile token is an invalid token
            return None

    async def endpoint(request: Request) -> Response:
        not_found = _error(404, "not_found", "no journal for this correlation id")
        raw = request.path_params.get("correlation_id", "")
        correlation_id = parse_id(raw) if isinstance(raw, str) and len(raw) <= 64 else None
        is_operator = operator(request, token)
        client_id = None if is_operator else tab(request)
        if correlation_id is None or not (is_operator or client_id):
            return not_found
        try:
            entries = await journal.read(correlation_id)
            if not entries or not (is_operator or owner(entries) == client_id):
                return not_found
            since = await journal.restarted()
        except Exception as exc:
            _log.warning("clicktrace journal: reading failed: %s", type(exc).__name__)
            down = _error(503, "journal_unavailable", "the journal store does not answer")
            down.headers["retry-after"] = str(RETRY_AFTER_SECONDS)
            return down
        body = answer(entries, time.time() * 1000.0, limits, restarted=since)
        return JSONResponse(body, headers={"cache-control": "no-store"})

    return Route(path, endpoint, methods=["GET"])
