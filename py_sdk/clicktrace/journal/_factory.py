"""``create_store(url)`` / ``create_journal(url)``: one setting picks the journal's store,
as ``create_bus`` picks the broker.

The store's own settings may ride in the URL's query (``redis://host:6379/0?prefix=app1:journal``,
``postgresql://…/db?table=app1_journal``); they are taken out before the URL reaches the
driver, which would refuse them. Keyword ``options`` win over the query."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from clicktrace.journal._store import Store
from clicktrace.journal._writer import Journal

__all__ = ["SCHEMES", "create_journal", "create_store"]

SCHEMES = ("memory", "sqlite", "redis", "rediss", "postgres", "postgresql")


def _count(raw: str) -> int:
    return int(raw)


_AGE: dict[str, Callable[[str], Any]] = {"max_age_seconds": float}
# The query settings each store takes (the rest of the query is the driver's).
_SETTINGS: dict[str, dict[str, Callable[[str], Any]]] = {
    "memory": {"max_entries": _count, **_AGE},
    "sqlite": {"table": str, "max_entries": _count, "max_open": _count, **_AGE},
    "redis": {"prefix": str, "max_ids": _count, "max_open": _count, "timeout": float, **_AGE},
    "postgres": {
        "table": str,
        "max_entries": _count,
        "max_open": _count,
        "timeout": float,
        **_AGE,
    },
}


def _split(url: str, kind: str, options: dict[str, Any]) -> str:
    """Move the store's settings from the query of ``url`` into ``options``; the URL without
    them."""
    parts = urlsplit(url)
    known = _SETTINGS[kind]
    rest = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        convert = known.get(key)
        if convert is None:
            rest.append((key, value))
            continue
        try:
            options.setdefault(key, convert(value))
        except ValueError:
            raise ValueError(f"the journal url's {key}={value[:40]!r} is not valid") from None
    return urlunsplit(parts._replace(query=urlencode(rest)))


def create_store(url: str, **options: Any) -> Store:
    """``memory://`` (``?max_entries=…&max_age_seconds=…``), ``sqlite:///path/to/file``,
    ``redis://host:6379/0`` (``?prefix=…``), ``postgresql://user@host/db`` (``?table=…``);
    ``options`` go to the store."""
    if not isinstance(url, str):
        raise TypeError("the journal url must be a str")
    scheme = urlsplit(url).scheme.lower()
    if scheme == "memory":
        from clicktrace.journal._memory import MemoryStore

        _split(url, "memory", options)
        return MemoryStore(**options)
    if scheme == "sqlite":
        from clicktrace.journal._sqlite import SqliteStore

        _split(url, "sqlite", options)
        # As SQLAlchemy reads it: sqlite:///relative/path, sqlite:////absolute/path.
        path = urlsplit(url).path
        path = path[1:] if path.startswith("/") else path
        return SqliteStore(path or ":memory:", **options)
    if scheme in ("redis", "rediss"):
        from clicktrace.journal._redis import RedisStore

        return RedisStore(_split(url, "redis", options), **options)
    if scheme in ("postgres", "postgresql"):
        from clicktrace.journal._postgres import PostgresStore

        return PostgresStore(_split(url, "postgres", options), **options)
    raise ValueError(f"unknown journal url scheme {scheme[:20]!r}; use one of {list(SCHEMES)}")


def create_journal(url: str, *, max_queue: int | None = None, **options: Any) -> Journal:
    """A :class:`Journal` writing to the store ``url`` names."""
    store = create_store(url, **options)
    return Journal(store) if max_queue is None else Journal(store, max_queue=max_queue)
