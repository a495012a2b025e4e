"""The writer: put never blocks or raises; a full queue and a failing store are counted."""

from __future__ import annotations

from collections.abc import Sequence

from clicktrace.journal import Entry, Journal, MemoryStore
from clicktrace.journal.store import Process

A = "01JD8X3Q7E8W5V4T2N9R6M0K1A"


class Down:
    """A store whose backend is unreachable."""

    dropped = 0

    async def write(self, entries: Sequence[Entry]) -> None:
        raise ConnectionError("connection refused")

    async def read(self, correlation_id: str) -> list[Entry]:
        raise ConnectionError("connection refused")

    async def recent(self, since_ms: float, limit: int) -> list[str]:
        raise ConnectionError("connection refused")

    async def open_clicks(self, before_ms: float, limit: int) -> tuple[list[str], int]:
        raise ConnectionError("connection refused")

    async def register(self, process: str, info: Process) -> None:
        raise ConnectionError("connection refused")

    async def unregister(self, process: str) -> None:
        raise ConnectionError("connection refused")

    async def processes(self) -> dict[str, Process]:
        raise ConnectionError("connection refused")

    async def ping(self) -> None:
        raise ConnectionError("connection refused")

    async def aclose(self) -> None:
        return None


class Slow(MemoryStore):
    """An async store (no in-place add) backed by the ring."""

    add = None  # type: ignore[assignment]

    async def write(self, entries: Sequence[Entry]) -> None:
        for e in entries:
            MemoryStore.add(self, e)


def entry(stage: str) -> Entry:
    return Entry(correlation_id=A, stage=stage, at=1.0)


async def test_a_store_that_is_down_costs_entries_never_an_exception() -> None:
    journal = Journal(Down())
    for i in range(3):
        journal.put(entry(f"s{i}"))
    await journal.flush()
    assert journal.write_failures == 3
    assert journal.failing_since is not None
    assert journal.last_error == "ConnectionError: connection refused"


async def test_a_full_queue_drops_and_counts_instead_of_waiting() -> None:
    journal = Journal(Slow(), max_queue=2)
    for i in range(5):
        journal.put(entry(f"s{i}"))  # no await in between: the writer has not run yet
    assert journal.queue_drops == 3
    await journal.flush()
    assert [e.stage for e in await journal.read(A)] == ["s0", "s1"]
    assert journal.drops == 3


async def test_a_store_that_answers_again_is_healthy_again() -> None:
    store = Slow()
    journal = Journal(store)
    journal.failing_since, journal.last_error = 1.0, "x"
    journal.put(entry("accepted"))
    await journal.flush()
    assert journal.failing_since is None
    assert len(await journal.read(A)) == 1


def test_put_without_an_event_loop_keeps_the_entry_for_later() -> None:
    journal = Journal(Slow())
    journal.put(entry("accepted"))
    assert journal.queued == 1
