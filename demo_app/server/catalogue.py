"""Domain rules of the catalogue, kept apart from HTTP and the bus."""

from __future__ import annotations

from typing import Any

import aiosqlite

from clicktrace.envelope import new_envelope

from .database import CATALOGUE, append_event

MAX_NAME_LENGTH = 80
RENAMED = "ProductRenamed"
CREATED = "ProductCreated"


def clean_name(value: Any) -> str | None:
    """The name to store, or ``None`` when it is not acceptable (checked synchronously)."""
    if not isinstance(value, str):
        return None
    name = " ".join(value.split())
    return name if 0 < len(name) <= MAX_NAME_LENGTH else None


def stream_of(product_id: int) -> str:
    return f"product-{product_id}"


async def seed(conn: aiosqlite.Connection) -> None:
    """First start: record the catalogue as events and build the read model from them."""
    async with conn.execute("SELECT COUNT(*) FROM products") as cur:
        row = await cur.fetchone()
    if row and row[0]:
        return
    for product_id, (name, price) in enumerate(CATALOGUE, start=1):
        payload = {"id": product_id, "name": name, "price": price}
        await append_event(conn, stream_of(product_id), new_envelope(CREATED, payload))
        await conn.execute(
            "INSERT INTO products (id, name, price, version) VALUES (?, ?, ?, 1)",
            (product_id, name, price),
        )
