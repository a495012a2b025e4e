"""``create_store(url)`` / ``create_journal(url)``: one setting picks the store; the store's own
settings ride in the URL's query, and keyword options win over them."""

from __future__ import annotations

from pathlib import Path

import pytest

from clicktrace.journal import Journal, MemoryStore, create_journal, create_store
from clicktrace.journal._postgres import PostgresStore
from clicktrace.journal._redis import RedisStore
from clicktrace.journal._sqlite import SqliteStore


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("memory://", MemoryStore),
        ("sqlite:///j.sqlite3", SqliteStore),
        ("redis://127.0.0.1:6379/0", RedisStore),
        ("rediss://127.0.0.1:6379/0", RedisStore),
        ("postgres://postgres@127.0.0.1/test", PostgresStore),
        ("postgresql://postgres@127.0.0.1/test", PostgresStore),
        ("MEMORY://", MemoryStore),
    ],
)
def test_each_scheme_makes_its_store_without_connecting(url: str, kind: type) -> None:
    assert type(create_store(url)) is kind  # nothing listens for the TLS one: no connection yet


def test_the_store_settings_leave_the_query_and_keywords_win(tmp_path: Path) -> None:
    store = create_store(f"sqlite:///{tmp_path}/j.sqlite3?table=from_query")
    assert isinstance(store, SqliteStore) and store.table == "from_query"
    store = create_store(f"sqlite:///{tmp_path}/j.sqlite3?table=from_query", table="from_keyword")
    assert isinstance(store, SqliteStore) and store.table == "from_keyword"
    store = create_store("postgresql://postgres@127.0.0.1/test?table=app1_journal")
    assert isinstance(store, PostgresStore) and store.table == "app1_journal"


@pytest.mark.parametrize(
    ("url", "error", "match"),
    [
        ("kafka://127.0.0.1:9092", ValueError, "unknown journal url scheme"),
        ("", ValueError, "unknown journal url scheme"),
        ("memory://?max_entries=many", ValueError, "max_entries='many' is not valid"),
        ("redis://127.0.0.1/0?timeout=soon", ValueError, "timeout='soon' is not valid"),
        ("sqlite:///j.sqlite3?table=x;drop", ValueError, "invalid table name"),
    ],
)
def test_a_url_it_cannot_honour_is_refused_at_once(
    url: str, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        create_store(url)


def test_the_url_must_be_a_string() -> None:
    with pytest.raises(TypeError, match="must be a str"):
        create_store(b"memory://")  # type: ignore[arg-type]


async def test_create_journal_wraps_the_store_in_a_writer() -> None:
    journal = create_journal("memory://?max_entries=10", max_queue=5)
    assert isinstance(journal, Journal) and isinstance(journal.store, MemoryStore)
    await journal.aclose()
