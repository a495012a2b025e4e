"""The checks ``/clicktrace/health`` runs. Each is an async callable returning a
:class:`Result`; one that raises or times out is reported with its ``failure`` status."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from clicktrace.journal._entry import Entry
from clicktrace.journal._store import Store
from clicktrace.journal._verdict import NEEDS_A_PERSON, Thresholds, line, verdict
from clicktrace.journal._writer import Journal, restarted

if TYPE_CHECKING:  # the outbox (and the bus under it) is loaded only by apps that use it
    from clicktrace.outbox import OutboxStats

__all__ = [
    "Check",
    "Result",
    "Status",
    "bus_check",
    "correlations_check",
    "journal_check",
    "outbox_check",
    "replay_check",
]

_READS_AT_ONCE = 32  # correlations_check's reads in flight at once

Status = Literal["Healthy", "Degraded", "Unhealthy"]
RANK: dict[str, int] = {"Healthy": 0, "Degraded": 1, "Unhealthy": 2}


@dataclass(frozen=True, slots=True)
class Result:
    status: Status
    description: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Check:
    """A named check; ``failure`` is what it reports when ``run`` raises or times out."""

    name: str
    run: Callable[[], Awaitable[Result]]
    failure: Status = "Unhealthy"

    def __call__(self) -> Awaitable[Result]:
        return self.run()


class _Pingable(Protocol):
    async def ping(self) -> None: ...


RECENT_RECOVERY_SECONDS = 300.0


def bus_check(bus: _Pingable, name: str = "bus") -> Check:
    """A real round trip to the broker (``Bus.ping``); unreachable is Unhealthy. A bus that
    re-created a stream, group or queue the broker had lost within the last
    ``RECENT_RECOVERY_SECONDS`` is Degraded: what the broker held then is gone from it (the
    relay's reconciler publishes it again), and the operator should know the broker forgot."""

    async def run() -> Result:
        started = time.perf_counter()
        await bus.ping()
        ms = round((time.perf_counter() - started) * 1000, 2)
        data: dict[str, Any] = {"round_trip_ms": ms}
        recoveries = getattr(bus, "recoveries", 0)
        last = getattr(bus, "last_recovery", None)
        if recoveries:
            data["recoveries"] = recoveries
        if last is not None:
            ago = max(0.0, time.time() - last.at)
            data["last_recovery"] = {"what": last.what, "seconds_ago": round(ago, 1)}
            if ago < RECENT_RECOVERY_SECONDS:
                return Result("Degraded", f"the broker had lost {last.what} {ago:.0f} s ago", data)
        return Result("Healthy", "the broker answered", data)

    return Check(name, run)


class _Lag(Protocol):
    async def lag(self, conn: Any) -> tuple[int, float | None]: ...


def outbox_check(
    outbox: _Lag,
    connect: Callable[[], Any],
    *,
    degraded_after_seconds: float = 30.0,
    name: str = "outbox",
) -> Check:
    """Unrelayed rows and the age of the oldest; older than ``degraded_after_seconds``:
    Degraded (the relay is behind or stopped). Where the outbox has ``stats`` (the shipped
    ones), also its rows, the rows waiting for their claims, and the rows the reconciler gave
    up on: any of those is Degraded. ``connect`` is an async context manager
    factory (``db.connect``) or an awaitable connection factory."""

    async def run() -> Result:
        stats = getattr(outbox, "stats", None)
        extra: OutboxStats | None = None
        opened = connect()
        if hasattr(opened, "__aenter__"):
            async with opened as conn:
                count, oldest = await outbox.lag(conn)
                if stats is not None:
                    extra = await stats(conn)
        else:
            conn = await opened
            try:
                count, oldest = await outbox.lag(conn)
                if stats is not None:
                    extra = await stats(conn)
            finally:
                result = conn.close()
                if hasattr(result, "__await__"):
                    await result
        age = 0.0 if oldest is None else max(0.0, time.time() - oldest)
        data: dict[str, Any] = {
            "unrelayed": count,
            "oldest_age_seconds": round(age, 3),
            "threshold_seconds": degraded_after_seconds,
        }
        if extra is not None:
            data.update(
                rows=extra.rows,
                awaiting_claims=extra.awaiting_claims,
                gave_up=extra.gave_up,
                bytes=extra.bytes,
            )
            if extra.gave_up:  # a command no consumer ever claimed: lost, unless a person acts
                return Result(
                    "Degraded",
                    f"{extra.gave_up} rows never claimed after every re-publication",
                    data,
                )
        if age > degraded_after_seconds:
            return Result("Degraded", f"{count} rows wait, the oldest for {age:.0f} s", data)
        return Result("Healthy", f"{count} rows wait", data)

    return Check(name, run, "Degraded")


def correlations_check(
    journal: Journal,
    *,
    thresholds: Thresholds | None = None,
    window_seconds: float = 900.0,
    max_stuck: int = 0,
    max_dead_letters: int = 0,
    limit: int = 500,
    name: str = "correlations",
) -> Check:
    """Every open click (the store's open-click index, the oldest ``limit`` read): how many
    are stuck or lost (and the oldest), and how many open ones were not read; how many of the
    ids active in the last ``window_seconds`` (at most ``limit``) were dead-lettered. More than
    ``max_stuck`` stuck or ``max_dead_letters`` dead-lettered: Degraded."""
    limits = thresholds or Thresholds()

    async def run() -> Result:
        now = time.time() * 1000.0
        store = journal.store
        # Clicks younger than the threshold cannot be stuck unless their deadline passed, so
        # every open click is a candidate; the oldest come first, the likeliest stuck.
        ids, open_total = await store.open_clicks(now, limit)
        since = restarted(await store.processes(), now)
        stuck: list[tuple[str, str]] = []
        unknown = 0
        for cid, entries in zip(ids, await _read_all(store, ids), strict=True):
            if not entries:
                continue
            v = verdict(entries, now, limits, restarted=since)
            if v["state"] in NEEDS_A_PERSON:
                stuck.append((cid, line(v)))
            elif v["state"] == "unknown":
                unknown += 1
        recent = await store.recent(now - window_seconds * 1000.0, limit)
        dead = sum(
            any(e.stage == "dead_lettered" for e in entries)
            for entries in await _read_all(store, recent)
        )
        data: dict[str, Any] = {
            "stuck": len(stuck),
            "unknown": unknown,
            "open": open_total,
            "scanned": len(ids),
            "not_scanned": open_total - len(ids),
            "dead_lettered": dead,
            "window_seconds": window_seconds,
            "stuck_after_ms": limits.stuck_after_ms,
            "oldest_stuck": None
            if not stuck
            else {"correlation_id": stuck[0][0], "verdict": stuck[0][1]},
        }
        cut = f" (the oldest {len(ids)} of {open_total} open read)" if open_total > len(ids) else ""
        if len(stuck) > max_stuck or dead > max_dead_letters:
            return Result("Degraded", f"{len(stuck)} stuck{cut}, {dead} dead-lettered", data)
        return Result("Healthy", f"no stuck click among {len(ids)} open{cut}", data)

    return Check(name, run, "Degraded")


async def _read_all(store: Store, ids: list[str]) -> list[list[Entry]]:
    """The entries of ``ids``, a few reads in flight at a time (one round trip each)."""
    out: list[list[Entry]] = []
    for i in range(0, len(ids), _READS_AT_ONCE):
        out += await asyncio.gather(*map(store.read, ids[i : i + _READS_AT_ONCE]))
    return out


def journal_check(
    journal: Journal, *, window_seconds: float = 300.0, name: str = "journal"
) -> Check:
    """The journal's own state: drops (queue full, store failed or full), and a real ping to
    its store. A store that fails, or drops within ``window_seconds``: Degraded."""
    seen = {"drops": journal.drops, "at": 0.0}

    async def run() -> Result:
        drops = journal.drops
        now = time.time()
        if drops > seen["drops"]:
            seen["drops"], seen["at"] = drops, now
        data: dict[str, Any] = {
            "drops": drops,
            "queued": journal.queued,
            "last_error": journal.last_error,
        }
        try:
            await journal.store.ping()
        except Exception as exc:
            data["last_error"] = f"{type(exc).__name__}: {exc}"[:200]
            return Result("Degraded", "the journal store does not answer", data)
        if journal.failing_since is not None:
            return Result("Degraded", "the journal store refused the last write", data)
        if seen["at"] and now - seen["at"] < window_seconds:
            return Result("Degraded", f"{drops} entries dropped", data)
        return Result("Healthy", f"{drops} entries dropped in all", data)

    return Check(name, run, "Degraded")


class _Buffer(Protocol):
    async def current(self, client_id: str) -> int: ...


_PROBE_CLIENT = "00000000000000000000000000"


def replay_check(buffer: _Buffer, name: str = "notify_replay") -> Check:
    """A real read from the notifier's replay store; unreachable is Degraded (commands are
    still accepted; tabs get their outcomes late, by resync)."""

    async def run() -> Result:
        await buffer.current(_PROBE_CLIENT)
        return Result("Healthy", "the replay store answered")

    return Check(name, run, "Degraded")
