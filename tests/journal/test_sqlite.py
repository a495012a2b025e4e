"""The SQLite store keeps its entries in a file: a new store on the same file (a restarted
process) reads what an earlier one wrote. (The interface every store shares is held in
test_store.py.)"""

from __future__ import annotations

from pathlib import Path

from clicktrace.ids import new_id
from clicktrace.journal import Entry, create_store


async def test_entries_outlive_the_store_that_wrote_them(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/journal.sqlite3?table=kept"
    cid = new_id()
    first = create_store(url)
    await first.write([Entry(correlation_id=cid, stage="accepted", at=1.0)])
    await first.aclose()
    second = create_store(url)
    try:
        assert [e.stage for e in await second.read(cid)] == ["accepted"]
    finally:
        await second.aclose()
    assert (tmp_path / "journal.sqlite3").exists()


async def test_no_path_is_a_private_in_memory_database() -> None:
    store = create_store("sqlite://")
    cid = new_id()
    try:
        await store.write([Entry(correlation_id=cid, stage="stored", at=1.0)])
        assert [e.stage for e in await store.read(cid)] == ["stored"]
    finally:
        await store.aclose()
