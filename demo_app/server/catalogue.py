"""Domain rules of the catalogue, kept apart from HTTP, the bus and the database."""

from __future__ import annotations

import unicodedata
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
    """The name to store, or ``None`` when it is not acceptable (checked synchronously):
    1 to 80 characters once whitespace is folded, and no control characters (PostgreSQL's
    ``text`` refuses NUL, which would fail only later, in the projection)."""
    if not isinstance(value, str):
        return None
    name = " ".join(value.split())
    if not 0 < len(name) <= MAX_NAME_LENGTH:
        return None
    return None if any(unicodedata.category(c) == "Cc" for c in name) else name


def stream_of(product_id: int) -> str:
    return f"product-{product_id}"
