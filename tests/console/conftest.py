"""Fixtures for the console's tests: a journal on each store kind (memory, SQLite, and the
real Redis and PostgreSQL), dropped after each test, and clicks of every verdict."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from clicktrace.ids import new_id
from clicktrace.journal import Entry, Journal, Store, create_store
from clicktrace.testing import unique_name
from tests.journal.stores import KINDS, drop, url_for

TRACE = "b" * 32


async def make_store(kind: str, tmp_path: Path) -> tuple[Store, str]:
    name = unique_name("console", sql=True)
    url = url_for(kind, tmp_path)
    options: dict[str, object] = {}
    if kind == "redis":
        options = {"prefix": name}
    elif kind in ("postgres", "sqlite"):
        options = {"table": name}
    return create_store(url, **options), name


@pytest.fixture(params=KINDS)
async def any_journal(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Journal]:
    """A journal on each store kind (written in place or by its writer: ``await flush()``)."""
    kind = str(request.param)
    store, name = await make_store(kind, tmp_path)
    journal = Journal(store)
    yield journal
    await journal.aclose()
    await drop(kind, name)


def now_ms() -> float:
    return time.time() * 1000.0


def e(cid: str, stage: str, at: float, **fields: object) -> Entry:
    options: dict[str, object] = {"trace_id": TRACE, "process": "api:1", "client_id": "tab-1"}
    options.update(fields)
    return Entry(correlation_id=cid, stage=stage, at=at, **options)  # type: ignore[arg-type]


def confirmed(at: float, action: str = "todos.add") -> list[Entry]:
    cid = new_id()
    return [
        e(cid, "clicked", at - 5, detail=action),
        e(cid, "accepted", at, detail="POST /todos 202", outcome="202"),
        e(cid, "published", at + 2, detail=f"todos {new_id()}"),
        e(cid, "delivered", at + 4, attempt=1, detail="todos group projection"),
        e(cid, "acked", at + 6, attempt=1, detail="group projection", duration_ms=1.0),
        e(cid, "notified", at + 7, outcome="confirmed", detail="seq 1"),
        e(cid, "settled", at + 20, outcome="confirmed", duration_ms=25.0),
    ]


def dead_lettered(at: float, *, deadline: bool = False) -> list[Entry]:
    cid = new_id()
    reason = "deadline_exceeded" if deadline else "RuntimeError: boom"
    return [
        e(cid, "accepted", at, detail="POST /todos 202", outcome="202"),
        e(cid, "published", at + 2, detail=f"todos {new_id()}"),
        e(cid, "delivered", at + 4, attempt=1, detail="todos group projection"),
        e(
            cid,
            "dead_lettered",
            at + 6,
            attempt=1,
            detail=reason,
            outcome="deadline_exceeded" if deadline else "failed",
        ),
    ]


def stuck(at: float, *, tab_gave_up: bool = False) -> list[Entry]:
    cid = new_id()
    out = [
        e(cid, "accepted", at, detail="POST /todos 202", outcome="202"),
        e(cid, "stored", at + 1, detail="todos"),
    ]
    if tab_gave_up:
        out.append(e(cid, "settled", at + 10_000, outcome="timed_out", duration_ms=10_000.0))
    return out
