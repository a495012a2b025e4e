"""What the catalogue keeps: one interface, two databases (SQLite embedded, PostgreSQL
distributed). The API appends an event and its outbox row in one transaction; the projection
claims a message and updates the read model in another."""

from __future__ import annotations

from typing import Any, Protocol

from clicktrace.envelope import Envelope
from clicktrace.outbox.relay import Outbox

# ("confirmed" | "rejected", the product as it now is, the error), None for a redelivery.
Outcome = tuple[str, dict[str, Any] | None, dict[str, str] | None]


class Store(Protocol):
    @property
    def outbox(self) -> Outbox:
        """Where commands wait for the relay."""
        ...

    async def start(self) -> None:
        """Create what is missing; on first start, seed the catalogue as events."""

    async def aclose(self) -> None: ...

    async def products(self) -> list[dict[str, Any]]: ...

    async def accept_rename(
        self, product_id: int, envelope: Envelope, topic: str, *, outbox: bool = True
    ) -> bool:
        """Append the event (and, unless ``outbox`` is False, its outbox row) in one
        transaction; False when there is no such product."""
        ...

    async def apply_rename(
        self, consumer: str, message_id: str, product_id: int, name: str
    ) -> Outcome | None:
        """Apply a rename once per message id, in the projection's transaction."""
        ...

    async def connect_relay(self) -> Any:
        """The outbox relay's own connection."""


def taken(name: str) -> dict[str, str]:
    return {"code": "name_taken", "message": f"Another product is already called {name!r}."}


NOT_FOUND = {"code": "not_found", "message": "No such product."}
