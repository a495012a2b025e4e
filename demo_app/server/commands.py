"""The catalogue's HTTP API: the read model for queries, commands answered with 202."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clicktrace import context as click_context
from clicktrace.asgi import error_response
from clicktrace.envelope import new_envelope
from clicktrace.outbox import OutboxRelay, SqliteOutbox
from clicktrace.propagation import METADATA_KEYS, extract

from .catalogue import RENAMED, clean_name, stream_of
from .database import Database, append_event, get_product, list_products

MAX_BODY_BYTES = 16 * 1024


async def _json_body(request: Request) -> dict[str, Any] | None:
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        return None
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _with_body_deadline(body: dict[str, Any]) -> click_context.ClickContext | None:
    """The request's context, completed by the body metadata where the headers were silent
    (headers win; the client id only ever comes from the verified token)."""
    click = click_context.current()
    metadata = body.get("metadata")
    if click is None or click.deadline_ms is not None or not isinstance(metadata, dict):
        return click
    deadline = extract(metadata, keys=METADATA_KEYS).deadline_ms
    return click if deadline is None else click_context.ClickContext(
        click.correlation_id, click.causation_id, click.client_id, deadline
    )


def routes(
    db: Database, outbox: SqliteOutbox, relay: OutboxRelay, topic: str
) -> list[Route]:
    async def products(request: Request) -> Response:
        async with db.connect() as conn:
            return JSONResponse(await list_products(conn))

    async def rename(request: Request) -> Response:
        try:
            product_id = int(request.path_params["id"])
        except ValueError:
            return error_response(404, "not_found", "No such product.")
        body = await _json_body(request)
        if body is None:
            return error_response(400, "invalid_body", "The body must be a JSON object.")
        name = clean_name(body.get("name"))
        if name is None:
            return error_response(422, "invalid_name", "A name needs 1 to 80 characters.")
        click = _with_body_deadline(body)
        async with db.transaction() as conn:
            if await get_product(conn, product_id) is None:
                return error_response(404, "not_found", "No such product.")
            envelope = new_envelope(RENAMED, {"id": product_id, "name": name}, click=click)
            await append_event(conn, stream_of(product_id), envelope)
            # Same transaction as the event: committed together, or not at all.
            await outbox.add(conn, topic, envelope)
        relay.wake()
        return JSONResponse(
            {"correlation_id": envelope.metadata.correlation_id, "status": "accepted"},
            status_code=202,
        )

    return [
        Route("/api/products", products, methods=["GET"]),
        Route("/api/products/{id}/rename", rename, methods=["POST"]),
    ]


