"""``create_store(url)`` / ``create_journal(url)``: one setting picks the journal's store,
as ``create_bus`` picks the broker."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

from clicktrace.journal.store import Store
from clicktrace.journal.writer import Journal

__all__ = ["SCHEMES", "create_journal", "create_store"]

SCHEMES = ("memory", "sqlite", "redis", "rediss", "postgres", "postgresql")


def create_store(url: str, **options: Any) -> Store:
    """``memory://`` (``?max_entries=…&max_age_seconds=…``), ``sqlite:///path/to/file``,
    ``redis://host:6379/0``, ``postgresql://user@host/db``; ``options`` go to the store."""
    if not isinstance(url, str):
        raise TypeError("the journal url must be a str")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "memory":
        from clicktrace.journal.memory import MemoryStore

        query = dict(parse_qsl(parts.query))
        if "max_entries" in query:
            options.setdefault("max_entries", int(query["max_entries"]))
        if "max_age_seconds" in query:
            options.setdefault("max_age_seconds", float(query["max_age_seconds"]))
        return MemoryStore(**options)
    if scheme == "sqlite":
        from clicktrace.journal.sqlite import SqliteStore

        # As SQLAlchemy reads it: sqlite:///relative/path, sqlite:////absolute/path.
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        return SqliteStore(path or ":memory:", **options)
    if scheme in ("redis", "rediss"):
        from clicktrace.journal.redis import RedisStore

        return RedisStore(url, **options)
    if scheme in ("postgres", "postgresql"):
        from clicktrace.journal.postgres import PostgresStore

        return PostgresStore(url, **options)
    raise ValueError(f"unknown journal url scheme {scheme[:20]!r}; use one of {list(SCHEMES)}")


def create_journal(url: str, *, max_queue: int | None = None, **options: Any) -> Journal:
    """A :class:`Journal` writing to the store ``url`` names."""
    store = create_store(url, **options)
    return Journal(store) if max_queue is None else Journal(store, max_queue=max_queue)
