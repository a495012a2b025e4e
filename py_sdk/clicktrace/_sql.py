"""SQL identifiers the stores interpolate (a table or schema name cannot be a bound
parameter). Under every layer, so the outbox, the journal and the claims tables share one
check without importing each other."""

from __future__ import annotations

import re
from typing import Final, NamedTuple

__all__ = ["PRUNE_EVERY", "PRUNE_LIMIT", "TableStats", "check_prune_every", "check_table"]

# Stores that prune themselves do it every PRUNE_EVERY writes of a process, deleting at most
# PRUNE_LIMIT rows in one statement, so no write ever carries an unbounded DELETE (a table
# left unpruned for long catches up over several prunes).
PRUNE_EVERY: Final = 1000
PRUNE_LIMIT: Final = 5000


class TableStats(NamedTuple):
    """How many rows a table holds (PostgreSQL: the planner's estimate once analysed), the
    Unix time of its oldest (None when empty) and its size on disk with indexes (None where
    the database does not tell)."""

    rows: int
    oldest: float | None
    bytes: int | None = None


def check_prune_every(prune_every: int) -> int:
    if isinstance(prune_every, bool) or not isinstance(prune_every, int) or prune_every < 1:
        raise ValueError("prune_every must be an int >= 1")
    return prune_every


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def check_table(name: str) -> str:
    """A table name safe to put into SQL (it cannot be a bound parameter)."""
    if not isinstance(name, str) or not _IDENT.match(name):
        raise ValueError(f"invalid table name {name!r}")
    return name
