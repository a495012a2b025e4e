"""SQL identifiers the stores interpolate (a table or schema name cannot be a bound
parameter). Under every layer, so the outbox, the journal, the retry stores and the bus's
idempotency tables share one check without importing each other."""

from __future__ import annotations

import re

__all__ = ["check_table"]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def check_table(name: str) -> str:
    """A table name safe to put into SQL (it cannot be a bound parameter)."""
    if not isinstance(name, str) or not _IDENT.match(name):
        raise ValueError(f"invalid table name {name!r}")
    return name
