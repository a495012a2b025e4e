"""The projection: applies catalogue events to the read model and tells the tab the outcome.

It runs as a bus consumer, inside the context the message carried, so its span, its
notification and its logs share the click's trace and correlation id.
"""

from __future__ import annotations

from typing import Any, Protocol

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from clicktrace.envelope import Envelope
from clicktrace.notify import Notify

from .catalogue import RENAMED
from .database import Database, get_product


class Claim(Protocol):
    """Records that ``consumer`` applied ``message_id`` in the caller's transaction; False
    when it already had (a redelivery)."""

    async def __call__(self, conn: Any, consumer: str, message_id: str) -> bool: ...


CONSUMER = "catalogue-projection"


class Projection:
    def __init__(
        self, db: Database, notify: Notify, claim: Claim,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self._db = db
        self._notify = notify
        self._claim = claim
        self._tracer = trace.get_tracer(__name__, tracer_provider=tracer_provider)

    async def handle(self, envelope: Envelope) -> None:
        meta = envelope.metadata
        if meta.type != RENAMED:
            return
        with self._tracer.start_as_current_span(f"project {RENAMED}") as span:
            span.set_attribute("clicktrace.correlation_id", meta.correlation_id)
            outcome = await self._apply(envelope)
            if outcome is None or meta.client_id is None:
                return
            status, data, error = outcome
            span.set_attribute("clicktrace.outcome", status)
            await self._notify(
                meta.client_id, correlation_id=meta.correlation_id, status=status,
                type=RENAMED, data=data, error=error,
            )

    async def _apply(
        self, envelope: Envelope
    ) -> tuple[str, dict[str, Any] | None, dict[str, str] | None] | None:
        meta, payload = envelope.metadata, envelope.payload
        product_id, name = int(payload["id"]), str(payload["name"])
        async with self._db.transaction() as conn:
            if not await self._claim(conn, CONSUMER, meta.message_id):
                return None  # already applied and notified: a redelivery
            current = await get_product(conn, product_id)
            if current is None:
                return "rejected", None, {"code": "not_found", "message": "No such product."}
            async with conn.execute(
                "SELECT 1 FROM products WHERE name = ? AND id != ?", (name, product_id)
            ) as cur:
                if await cur.fetchone():
                    message = f"Another product is already called {name!r}."
                    return "rejected", current, {"code": "name_taken", "message": message}
            await conn.execute(
                "UPDATE products SET name = ?, version = version + 1 WHERE id = ?",
                (name, product_id),
            )
            return "confirmed", await get_product(conn, product_id), None
