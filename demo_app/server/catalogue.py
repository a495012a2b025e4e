"""Domain rules of the catalogue, kept apart from HTTP, the bus and the database."""

from __future__ import annotations

from typing import Any

MAX_NAME_LENGTH = 80
RENAMED = "ProductRenamed"
CREATED = "ProductCreated"

CATALOGUE = [
    ("Espresso cup", 9.5),
    ("French press", 34.0),
    ("Pour-over kettle", 58.0),
    ("Burr grinder", 129.0),
    ("Milk jug", 14.0),
    ("Tamper", 22.5),
]


def clean_name(value: Any) -> str | None:
    """The name to store, or ``None`` when it is not acceptable (checked synchronously)."""
    if not isinstance(value, str):
        return None
    name = " ".join(value.split())
    return name if 0 < len(name) <= MAX_NAME_LENGTH else None


def stream_of(product_id: int) -> str:
    return f"product-{product_id}"
