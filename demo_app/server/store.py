"""What the catalogue keeps: one interface, two databases (SQLite embedded, PostgreSQL
distributed). The API appends an event and its outbox row in one transaction; the projection
claims a message and updates the read model in another."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from starlette.requests import HTTPConnection
from starlette.responses import Response

from clicktrace import protocol
from clicktrace.claims import Claims, Outcome
from clicktrace.envelope import Envelope
from clicktrace.outbox import Outbox

__all__ = ["NOT_FOUND", "Outcome", "Store", "StoreUnavailable", "taken"]


class StoreUnavailable(Exception):
    """The database cannot be reached (down, restarting, out of connections): nothing was
    applied, and the client may retry (the API answers 503 with ``Retry-After``)."""


class Store(Protocol):
    @property
    def outbox(self) -> Outbox:
        """Where commands wait for the relay."""
        ...

    @property
    def claims(self) -> Claims:
        """The projection's claims: the relay confirms delivery by them (docs/bus.md)."""
        ...

    async def settle_dead_letter(self, consumer: str, message_id: str, outcome: Outcome) -> bool:
        """Claim a message the projection gave up on, keeping ``outcome``; False when it was
        claimed before (applied, or settled already)."""
        ...

    async def start(self) -> None:
        """Create what is missing; on first start, seed the catalogue as events."""

    async def aclose(self) -> None: ...

    async def products(self) -> list[dict[str, Any]]: ...

    async def accept_rename(
        self,
        request: HTTPConnection,
        product_id: int,
        envelope: Envelope,
        topic: str,
        answer: Callable[[bool], Response],
        *,
        outbox: bool = True,
    ) -> Response:
        """Append the event (and, unless ``outbox`` is False, its outbox row) in one
        transaction, once per retried command (``clicktrace.commands.once``, its claim in
        the same transaction); ``answer(found)`` is the response, kept for the retries."""
        ...

    async def apply_rename(
        self, consumer: str, message_id: str, product_id: int, name: str
    ) -> Outcome | None:
        """Apply a rename once per message id, in the projection's transaction, keeping its
        outcome with the claim; a redelivery gets the kept outcome (``None`` if none was)."""
        ...

    async def connect_relay(self) -> Any:
        """The outbox relay's own connection."""


def taken(name: str) -> dict[str, str]:
    return {"code": "name_taken", "message": f"Another product is already called {name!r}."}


NOT_FOUND = {"code": protocol.NOT_FOUND, "message": "No such product."}
