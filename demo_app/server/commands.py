"""The catalogue's HTTP API: the read model for queries, commands answered with 202."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clicktrace.commands import accepted, read_command, unavailable
from clicktrace.envelope import new_envelope
from clicktrace.journal import record
from clicktrace.protocol import NOT_FOUND, REPLAYED_HEADER, UNAUTHORIZED, UNSUPPORTED_MEDIA_TYPE
from clicktrace.web import (
    MAX_INTEGER,
    Refusal,
    error_response,
    operator,
    path_int,
    read_json_object,
)

from .catalogue import RENAMED, clean_name
from .faults import Faults, FaultsUnavailable, InvalidFaults, parse
from .store import Store, StoreUnavailable

MAX_BODY_BYTES = 16 * 1024
# Product ids are the read model's INTEGER column (PostgreSQL int4): a larger id names no
# product (404), where PostgreSQL would refuse to compare it (500).
MAX_PRODUCT_ID = MAX_INTEGER
# Seconds a client waits before retrying a command the database could not take.
RETRY_AFTER_SECONDS = 2
log = logging.getLogger("demo.commands")


def _store_down(exc: StoreUnavailable) -> Response:
    log.warning("database unreachable (%s): 503", exc)
    return unavailable("The catalogue is unavailable: try again shortly.", RETRY_AFTER_SECONDS)


async def _json_body(request: Request) -> dict[str, Any] | None:
    body = await read_json_object(request, max_bytes=MAX_BODY_BYTES)
    return None if isinstance(body, Refusal) else body


def _locked(exc: sqlite3.OperationalError) -> bool:
    """SQLite's "database is locked" / "busy": the write lock was not free within the
    connection's busy timeout. Nothing was applied; the client may retry."""
    text = str(exc)
    return "locked" in text or "busy" in text


def _json_content(request: Request) -> bool:
    """``application/json`` (a CORS "simple" request cannot send it: a page on another site
    that POSTs ``text/plain`` gets no preflight and no say)."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    return media_type == "application/json"


def routes(
    store: Store,
    wake_relay: Callable[[], None],
    topic: str,
    faults: Faults | None,
    operator_token: str | None = None,
) -> list[Route]:
    """The API; ``/api/faults`` only with ``faults`` and ``operator_token`` both given."""

    async def products(request: Request) -> Response:
        try:
            return JSONResponse(await store.products())
        except StoreUnavailable as exc:
            return _store_down(exc)

    async def rename(request: Request) -> Response:
        # 401 for a forged or expired token (never a 202), 413 past the cap, 400 for deep or
        # broken JSON; the click completed by the body's metadata (its deadline)
        command = await read_command(request, max_bytes=MAX_BODY_BYTES)
        if isinstance(command, Response):
            return command
        # ASCII digits up to the column's bound only
        product_id = path_int(request.path_params["id"], MAX_PRODUCT_ID)
        if product_id is None:
            return error_response(404, NOT_FOUND, "No such product.")
        name = clean_name(command.body.get("name"))
        if name is None:
            return error_response(422, "invalid_name", "A name needs 1 to 80 characters.")
        envelope = new_envelope(RENAMED, {"id": product_id, "name": name}, click=command.click)
        # The story's bug, on demand: the event is committed alone and the process that
        # was to publish it afterwards dies before it sends (simulated: the send is lost).
        no_outbox = faults is not None and await faults.on("no_outbox")

        def answer(found: bool) -> Response:
            if not found:
                return error_response(404, NOT_FOUND, "No such product.")
            return accepted(envelope.metadata.correlation_id)

        try:
            # A retry (same client and correlation id) gets the first answer, never a second
            # event: the claim commits with the event.
            response = await store.accept_rename(
                request, product_id, envelope, topic, answer, outbox=not no_outbox
            )
        except sqlite3.OperationalError as exc:
            if not _locked(exc):
                raise
            return unavailable()
        except StoreUnavailable as exc:
            return _store_down(exc)
        if response.status_code != 202 or REPLAYED_HEADER in response.headers:
            return response
        if no_outbox:
            record("stored", detail="event only: to be published without the outbox")
            log.error("the publishing process died before it sent %s", envelope.metadata.message_id)
        else:
            log.info(
                "accepted: rename product %d, event %s in the outbox",
                product_id,
                envelope.metadata.message_id,
            )
            wake_relay()
        return response

    api = [
        Route("/api/products", products, methods=["GET"]),
        Route("/api/products/{id}/rename", rename, methods=["POST"]),
    ]
    if faults is None or not operator_token:
        return api  # no fault route at all: 404 like any unknown path
    panel = faults
    token = operator_token

    async def fault_panel(request: Request) -> Response:
        if not operator(request, token):
            response = error_response(
                401, UNAUTHORIZED, "The fault panel needs the operator token."
            )
            response.headers["www-authenticate"] = "Bearer"
            return response
        if request.method == "POST" and not _json_content(request):
            return error_response(
                415, UNSUPPORTED_MEDIA_TYPE, "Send the faults as application/json."
            )
        try:
            if request.method == "GET":
                return JSONResponse(await panel.state())
            try:
                changes = parse(await _json_body(request))
            except InvalidFaults as exc:
                return error_response(400, "invalid_faults", str(exc))
            log.warning("fault panel: %s", changes)
            return JSONResponse(await panel.change(changes))
        except FaultsUnavailable:
            return unavailable("The fault state is unavailable: try again shortly.", 2)

    return [*api, Route("/api/faults", fault_panel, methods=["GET", "POST"])]
