"""``GET /clicktrace/journal/{correlation_id}``: where a click went.

A tab sees its own correlation ids (its ``x-clicktrace-client`` token); an operator token
(``authorization: Bearer …``, from the ``operator_token`` setting or the
``CLICKTRACE_OPERATOR_TOKEN`` environment variable) sees every id. Anything else, a malformed
or oversized id included, gets the same 404 as an id nobody recorded, without the store being
asked: the answer never tells whether an id exists.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clicktrace.ids import parse_id
from clicktrace.journal._entry import BROWSER_STAGES, Entry
from clicktrace.journal._verdict import Thresholds, answer
from clicktrace.journal._writer import Journal
from clicktrace.protocol import CLIENT_HEADER, JOURNAL_UNAVAILABLE, NOT_FOUND
from clicktrace.web._errors import RETRY_AFTER_SECONDS, Refusal, refuse, request_correlation_id
from clicktrace.web._limits import MAX_AUTHORIZATION_LENGTH, OPERATOR_TOKEN_ENV, operator

__all__ = ["JOURNAL_PATH", "journal_route", "owner"]

JOURNAL_PATH = "/clicktrace/journal/{correlation_id}"
_log = logging.getLogger("clicktrace.journal")


_NOT_FOUND = Refusal(404, NOT_FOUND, "no journal for this correlation id")
_DOWN = Refusal(503, JOURNAL_UNAVAILABLE, "the journal store does not answer")
_NO_STORE = {"cache-control": "no-store"}
_RETRY = {**_NO_STORE, "retry-after": str(RETRY_AFTER_SECONDS)}


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
        if client_verifier is None or not raw or len(raw) > MAX_AUTHORIZATION_LENGTH:
            return None
        try:
            return parse_id(client_verifier(raw))
        except Exception:  # a verifier choking on a hostile token is an invalid token
            return None

    async def endpoint(request: Request) -> Response:
        not_found = refuse(_NOT_FOUND, request_correlation_id(request.scope), _NO_STORE)
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
            return refuse(_DOWN, request_correlation_id(request.scope), _RETRY)
        body = answer(entries, time.time() * 1000.0, limits, restarted=since)
        return JSONResponse(body, headers={"cache-control": "no-store"})

    return Route(path, endpoint, methods=["GET"])
