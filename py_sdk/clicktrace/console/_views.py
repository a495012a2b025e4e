"""What the console's data routes answer, read from any journal store: one click, recent
clicks filtered, what needs a person, stage latency. Plain functions of a store and the
time; each reads a bounded number of ids (``MAX_SCAN``), a few dozen at a time.

A click's summary is its verdict (the same one the journal route and the CLI give) with the
line a person reads, its action (the browser's action span name, else the route the edge
answered), its client and when it started.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from clicktrace.ids import parse_id
from clicktrace.journal._entry import STAGES, Entry
from clicktrace.journal._route import owner
from clicktrace.journal._store import Store
from clicktrace.journal._verdict import LABELS, Thresholds, answer, ending, line, verdict

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_ITEMS",
    "MAX_LIMIT",
    "MAX_MINUTES",
    "MAX_SCAN",
    "Filters",
    "attention",
    "detail",
    "latency",
    "listing",
    "summary",
]

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_ITEMS = 200  # the attention lists
MAX_SCAN = 2000  # ids a listing or the latency view reads at most
MAX_MINUTES = 60
READ_AT_ONCE = 64
_ENDED = frozenset({"confirmed", "rejected", "dead_lettered", "refused"})
STATES = frozenset({*LABELS, "timed_out"})
"""What ``verdict=`` filters on: a verdict state, or ``timed_out`` (dead-lettered because its
deadline passed; ``dead_lettered`` then means the others)."""
_RANK = {stage: i for i, stage in enumerate(STAGES)}

Restarted = Mapping[str, float]


@dataclass(frozen=True, slots=True)
class Filters:
    """What ``GET …/api/clicks`` narrows the recent clicks to (None: any)."""

    q: str | None = None
    verdict: str | None = None
    action: str | None = None
    client: str | None = None
    since_ms: float | None = None
    limit: int = DEFAULT_LIMIT


async def _read(store: Store, ids: Sequence[str]) -> list[tuple[str, list[Entry]]]:
    out: list[tuple[str, list[Entry]]] = []
    for i in range(0, len(ids), READ_AT_ONCE):
        chunk = ids[i : i + READ_AT_ONCE]
        read = await asyncio.gather(*map(store.read, chunk))
        out += [(cid, entries) for cid, entries in zip(chunk, read, strict=True) if entries]
    return out


def _action(entries: list[Entry]) -> str | None:
    clicked = [e for e in entries if e.stage == "clicked" and e.detail]
    if clicked:
        return min(clicked, key=lambda e: e.at).detail
    accepted = [e for e in entries if e.stage in ("accepted", "refused") and e.detail]
    if accepted:  # "POST /todos 202": the route, without the status
        first = min(accepted, key=lambda e: e.at).detail or ""
        return first.rsplit(" ", 1)[0] if first.count(" ") >= 2 else first
    return None


def _kind(v: Mapping[str, Any], entries: list[Entry]) -> str:
    """The verdict's state, except for a dead letter (in a broken trace too): ``timed_out``
    when its deadline passed, else ``dead_lettered``."""
    end = ending(entries)
    if end is not None and end[0] == "dead_lettered":
        return "timed_out" if end[1] == "timed_out" else "dead_lettered"
    return str(v["state"])


def summary(
    entries: list[Entry], now_ms: float, thresholds: Thresholds, since: Restarted
) -> dict[str, Any]:
    """One click as the lists show it (``entries`` must not be empty)."""
    v = verdict(entries, now_ms, thresholds, restarted=since)
    return {
        "correlation_id": entries[0].correlation_id,
        "kind": _kind(v, entries),
        "action": _action(entries),
        "client_id": owner(entries),
        "started_ms": min(e.at for e in entries),
        "verdict": v,
        "line": line(v),
    }


def detail(
    entries: list[Entry], now_ms: float, thresholds: Thresholds, since: Restarted
) -> dict[str, Any]:
    """The journal route's body for one click plus the verdict's line."""
    body = answer(entries, now_ms, thresholds, restarted=since)
    body["line"] = line(body["verdict"])
    return body


def _matches(click: Mapping[str, Any], f: Filters) -> bool:
    if f.verdict is not None and click["kind"] != f.verdict:
        return False
    if f.action is not None and f.action.lower() not in (click["action"] or "").lower():
        return False
    return f.client is None or click["client_id"] == f.client


async def listing(
    store: Store, f: Filters, now_ms: float, thresholds: Thresholds, since: Restarted
) -> list[dict[str, Any]]:
    """Recent clicks matching ``f``, the most recently active first. ``q`` is a correlation id
    pasted whole (looked up directly, however old) or in part (a case-insensitive substring
    of the ``MAX_SCAN`` most recently active ids)."""
    q = f.q.strip().upper() if f.q else None
    whole = parse_id(q) if q else None
    if whole is not None:
        ids: list[str] = [whole]
    else:
        ids = await store.recent(f.since_ms if f.since_ms is not None else 0.0, MAX_SCAN)
        if q:
            ids = [cid for cid in ids if q in cid]
    found: list[dict[str, Any]] = []
    for i in range(0, len(ids), READ_AT_ONCE):
        for _, entries in await _read(store, ids[i : i + READ_AT_ONCE]):
            click = summary(entries, now_ms, thresholds, since)
            if _matches(click, f):
                found.append(click)
                if len(found) >= f.limit:
                    return found
    return found


async def attention(
    store: Store, now_ms: float, thresholds: Thresholds, since: Restarted
) -> dict[str, Any]:
    """What needs a person: stuck and lost clicks (the open-click index), dead-lettered and
    timed-out ones (the dead-letter index), at most ``MAX_ITEMS`` of each kind read, oldest
    first."""
    opened, _ = await store.open_clicks(now_ms - thresholds.stuck_after_ms, MAX_ITEMS)
    dead, _ = await store.dead_lettered(MAX_ITEMS)
    ids = list(dict.fromkeys([*opened, *dead]))
    counts = dict.fromkeys(("stuck", "lost", "dead_lettered", "timed_out"), 0)
    items = []
    for _, entries in await _read(store, ids):
        click = summary(entries, now_ms, thresholds, since)
        kind = click["kind"]
        if kind in counts:
            counts[kind] += 1
            items.append(click)
    items.sort(key=lambda c: c["started_ms"])
    return {"counts": counts, "items": items[:MAX_ITEMS]}


def _percentile(values: list[float], p: float) -> float | None:
    """Nearest rank: the smallest value with at least ``p`` of them at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(p * len(ordered)) - 1)], 1)


def _spread(values: list[float]) -> dict[str, Any]:
    return {
        "p50_ms": _percentile(values, 0.5),
        "p99_ms": _percentile(values, 0.99),
        "count": len(values),
    }


def _settled_ms(body: Mapping[str, Any], entries: Iterable[Entry]) -> float | None:
    """Click → settled: the tab's own measure when it sent one, else the server's time to
    its verdict when the click ended."""
    tab = [e.duration_ms for e in entries if e.stage == "settled" and e.duration_ms is not None]
    if tab:
        return max(0.0, tab[-1])
    v = body["verdict"]
    return float(v["ms"]) if v["state"] in _ENDED and v["ms"] is not None else None


async def latency(
    store: Store, minutes: int, now_ms: float, thresholds: Thresholds, since: Restarted
) -> dict[str, Any]:
    """p50 / p99 of each stage's time since the stage before it, and of click → settled, over
    the clicks active in the last ``minutes`` (at most ``MAX_SCAN``), with click → settled
    per minute."""
    start = now_ms - minutes * 60_000.0
    ids = await store.recent(start, MAX_SCAN)
    per_stage: dict[str, list[float]] = {}
    settled: list[float] = []
    buckets: dict[int, list[float]] = {}
    for _, entries in await _read(store, ids):
        body = answer(entries, now_ms, thresholds, restarted=since)
        for s in body["stages"][1:]:
            per_stage.setdefault(s["stage"], []).append(s["since_previous_ms"])
        took = _settled_ms(body, entries)
        if took is not None:
            settled.append(took)
            minute = int((min(e.at for e in entries) - start) // 60_000)
            buckets.setdefault(max(0, min(minutes - 1, minute)), []).append(took)
    return {
        "minutes": minutes,
        "stages": [
            {"stage": name, **_spread(per_stage[name])}
            for name in sorted(per_stage, key=lambda n: _RANK.get(n, len(_RANK)))
        ],
        "click_to_settled": _spread(settled),
        "series": [
            {"t_ms": start + m * 60_000.0, **_spread(buckets.get(m, []))} for m in range(minutes)
        ],
    }
