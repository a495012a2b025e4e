"""From a correlation id's entries to the route's answer: the stages in order with the time
between them, the trace ids, and one verdict.

Pure functions of the entries and the time, so the route, ``/clicktrace/health`` and the CLI
say the same thing. Browser stages carry the browser's clock: when it disagrees with the
server's (the HTTP span starting after the server accepted, the notification received before
it was sent), the browser stages are shifted by the smallest amount that restores the order,
and every duration is clamped at zero.
"""

from __future__ import annotations

from typing import Any

from clicktrace.journal.entry import BROWSER_STAGES, STAGES, Entry

__all__ = ["DEFAULT_STUCK_AFTER_MS", "Thresholds", "answer", "verdict"]

DEFAULT_STUCK_AFTER_MS = 30_000.0
_RANK = {stage: i for i, stage in enumerate(STAGES)}
_BEFORE_SERVER = ("clicked", "session", "http")
_AFTER_SERVER = ("received", "settled")


class Thresholds:
    """``stuck_after_ms``: no next stage within this long makes an unfinished click stuck."""

    __slots__ = ("stuck_after_ms",)

    def __init__(self, stuck_after_ms: float = DEFAULT_STUCK_AFTER_MS) -> None:
        if not stuck_after_ms > 0:
            raise ValueError("stuck_after_ms must be positive")
        self.stuck_after_ms = stuck_after_ms


def _skew(entries: list[Entry]) -> float:
    """Milliseconds to add to browser times so that they fit around the server's."""
    server = [e.at for e in entries if e.stage not in BROWSER_STAGES]
    if not server:
        return 0.0
    before = [e.at for e in entries if e.stage in _BEFORE_SERVER]
    after = [e.at for e in entries if e.stage in _AFTER_SERVER]
    first = min(server)
    if before and max(before) > first:  # the browser's clock is ahead
        return first - max(before)
    sent = [e.at for e in entries if e.stage in ("notified", "pushed", "replayed")]
    if after and sent and min(after) < max(sent):  # behind
        return max(sent) - min(after)
    return 0.0


def ordered(entries: list[Entry]) -> list[tuple[float, Entry]]:
    """``(corrected time, entry)`` in order."""
    skew = _skew(entries)
    timed = [(e.at + skew if e.stage in BROWSER_STAGES else e.at, e) for e in entries]
    timed.sort(key=lambda pair: (pair[0], _RANK.get(pair[1].stage, len(_RANK))))
    return timed


def _click_trace(entries: list[Entry]) -> str | None:
    ranked = sorted(
        (e for e in entries if e.trace_id), key=lambda e: (_RANK.get(e.stage, 99), e.at)
    )
    return ranked[0].trace_id if ranked else None


def _settled(timed: list[tuple[float, Entry]]) -> tuple[Entry, str] | None:
    """The entry that ended the click and how, or None while it is still going."""
    by_stage: dict[str, Entry] = {}
    for _, e in timed:
        by_stage[e.stage] = e  # the last of each
    if "settled" in by_stage:
        e = by_stage["settled"]
        return e, e.outcome or "settled"
    server = [e for _, e in timed if e.stage not in BROWSER_STAGES]
    if server and server[-1].stage == "refused":  # a refusal the client did not retry
        return server[-1], "refused"
    notified = by_stage.get("notified")
    if notified is not None and notified.outcome in ("confirmed", "rejected"):
        return notified, notified.outcome
    dead = by_stage.get("dead_lettered")
    if dead is not None:
        return dead, "timed_out" if dead.detail == "deadline_exceeded" else "dead_lettered"
    last = timed[-1][1]
    if last.stage == "accepted" and last.outcome not in (None, "202"):
        return last, "answered"  # a synchronous command: its answer was the outcome
    if last.stage == "acked" and not any(e.client_id for _, e in timed):
        return last, "acked"  # no tab to tell: the handler's success is the end
    return None


def _broken(timed: list[tuple[float, Entry]], click_trace: str | None) -> Entry | None:
    if click_trace is None:
        return None
    for _, e in timed:
        if e.trace_id != click_trace:
            return e
    return None


def verdict(entries: list[Entry], now_ms: float, thresholds: Thresholds) -> dict[str, Any]:
    """The verdict object of the route's answer (``entries`` must not be empty)."""
    timed = ordered(entries)
    click_trace = _click_trace(entries)
    end = _settled(timed)
    last_at, last = timed[-1]
    attempts = max((e.attempt or 0 for _, e in timed), default=0)
    if end is None:
        deadline = max((e.deadline_ms or 0 for e in entries), default=0)
        # Browser entries arrive in batches, late: the server's last stage says how long
        # nothing has happened.
        server_at = [e.at for e in entries if e.stage not in BROWSER_STAGES]
        idle = max(0.0, now_ms - (max(server_at) if server_at else last_at))
        if deadline and now_ms > deadline:
            late = now_ms - deadline
            return _v(
                "stuck",
                last.stage,
                "timed_out",
                late,
                f"timed out at {last.stage}: the deadline passed {late:.0f} ms ago",
            )
        if idle > thresholds.stuck_after_ms:
            return _v(
                "stuck",
                last.stage,
                None,
                idle,
                f"stuck at {last.stage}: no next stage for {idle:.0f} ms",
            )
    broken = _broken(timed, click_trace)
    how = None if end is None else end[1]
    took = None if end is None else _took(timed, end[0])
    if broken is not None:
        why = (
            "arrived without trace context"
            if broken.trace_id is None
            else (f"trace {broken.trace_id} is not the click's {click_trace}")
        )
        tail = f"; settled {how}" if how else ""
        return _v(
            "trace_broken", broken.stage, how, took, f"trace broken at {broken.stage}: {why}{tail}"
        )
    if end is not None:
        entry, how = end
        text = f"settled: {how}" + (f" in {took:.0f} ms" if took is not None else "")
        dead = any(e.stage == "dead_lettered" for _, e in timed)
        if how in ("dead_lettered", "rejected", "timed_out") and dead:
            text += f" (dead-lettered after {attempts} attempt{'s' * (attempts != 1)})"
        if all(e.sampled is False for e in entries):
            return _v("sampled_out", entry.stage, how, took, text + "; the trace was sampled out")
        return _v("settled", entry.stage, how, took, text)
    waiting = max(0.0, now_ms - last_at)
    if all(e.sampled is False for e in entries):
        return _v(
            "sampled_out",
            last.stage,
            None,
            waiting,
            f"in flight at {last.stage} for {waiting:.0f} ms; the trace was sampled out",
        )
    return _v(
        "in_flight", last.stage, None, waiting, f"in flight at {last.stage} for {waiting:.0f} ms"
    )


def _took(timed: list[tuple[float, Entry]], end: Entry) -> float | None:
    if end.stage == "settled" and end.duration_ms is not None:
        return max(0.0, end.duration_ms)
    end_at = next(t for t, e in timed if e is end)
    return max(0.0, end_at - timed[0][0])


def _v(state: str, stage: str, outcome: str | None, ms: float | None, text: str) -> dict[str, Any]:
    return {
        "state": state,
        "stage": stage,
        "outcome": outcome,
        "ms": None if ms is None else round(ms, 1),
        "text": text,
    }


def answer(entries: list[Entry], now_ms: float, thresholds: Thresholds) -> dict[str, Any]:
    """The route's whole JSON body for a non-empty list of entries."""
    timed = ordered(entries)
    start = timed[0][0]
    previous = start
    stages = []
    trace_ids: list[str] = []
    for at, e in timed:
        if e.trace_id and e.trace_id not in trace_ids:
            trace_ids.append(e.trace_id)
        stages.append(
            {
                "stage": e.stage,
                "at": round(e.at, 3),
                "since_start_ms": round(max(0.0, at - start), 3),
                "since_previous_ms": round(max(0.0, at - previous), 3),
                "trace_id": e.trace_id,
                "span_id": e.span_id,
                "process": e.process,
                "attempt": e.attempt,
                "outcome": e.outcome,
                "detail": e.detail,
                "duration_ms": None if e.duration_ms is None else max(0.0, e.duration_ms),
            }
        )
        previous = max(previous, at)
    click_trace = _click_trace(entries)
    if click_trace in trace_ids:
        trace_ids.remove(click_trace)
        trace_ids.insert(0, click_trace)  # the click's own first
    client_id = next((e.client_id for _, e in timed if e.client_id), None)
    return {
        "correlation_id": entries[0].correlation_id,
        "client_id": client_id,
        "trace_ids": trace_ids,
        "verdict": verdict(entries, now_ms, thresholds),
        "stages": stages,
    }
