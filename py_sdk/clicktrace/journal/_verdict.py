"""From a correlation id's entries to the route's answer: the stages in order with the time
between them, the trace ids, and one verdict.

Pure functions of the entries and the time, so the route, ``/clicktrace/health`` and the CLI
say the same thing. The verdict is the *server's*: where its side of the click ended or
stopped. The tab's own view (its ``settled`` entry) is reported beside it, never instead of it:
a tab that timed out says nothing about whether the server lost the command.

Clocks: each process stamps its entries with its own clock. Stages are ordered by causality
first (an effect is never drawn before its cause), then by each process's clock. A process's
offset is estimated only from evidence that bounds it (the same request timed on both sides:
the browser's HTTP span starts before the edge answered and ends after the route stored; the
tab's ``received`` follows the frame's hand-over, ``pushed``; a relay's ``relayed`` follows the
``stored`` it read); when the bounds admit 0 the offset is exactly 0.
Nothing else moves a clock: a tab's timeout before a late answer is the true order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clicktrace.journal._entry import BROWSER_STAGES, STAGES, Entry

__all__ = [
    "DEFAULT_STUCK_AFTER_MS",
    "LABELS",
    "NEEDS_A_PERSON",
    "Thresholds",
    "answer",
    "ending",
    "line",
    "offsets",
    "ordered",
    "verdict",
]

DEFAULT_STUCK_AFTER_MS = 30_000.0
_RANK = {stage: i for i, stage in enumerate(STAGES)}

# The verdict states, in the words a person reads: ``line(v)`` is ``f"{LABELS[state]} {text}"``.
LABELS = {
    "confirmed": "confirmed",
    "rejected": "rejected",
    "dead_lettered": "dead-lettered",
    "refused": "refused",
    "lost": "lost",
    "stuck": "stuck",
    "unknown": "unknown",
    "in_flight": "in flight",
    "trace_broken": "trace broken",
    "sampled_out": "sampled out",
}
NEEDS_A_PERSON = frozenset({"stuck", "lost"})
"""The states health and ``stuck`` count: the server side stopped and nothing will resume it."""

_BEFORE_SERVER = ("clicked", "session", "http")
_AFTER_DEAD = frozenset({"acked", "resent"})
_BROWSER = "browser"  # browser stages share the tab's clock whatever node ingested them
_EDGE = ("accepted", "refused")
# Cross-process causes: an entry of the key stage follows the earliest entry of the first
# group present. Only links that hold for every click (a route may notify before any
# delivery, so ``notified`` has none).
_CAUSES: dict[str, tuple[tuple[str, ...], ...]] = {
    "relayed": (("stored",),),
    "delivered": (("published",), ("relayed",)),
    "pushed": (("notified",),),
    "replayed": (("notified",),),
    "received": (("pushed", "replayed"), ("notified",)),
    "resent": (("dead_lettered",),),
}


# How far along the pipeline each server stage is: where an unfinished click stopped is the
# furthest stage it reached, not the last by clock (the edge journals ``accepted`` after the
# route's ``stored``; a retry's ``delivered`` is as far as the ``retried`` before it). Steps
# run inside the route or the handler and say nothing of how far the click got.
_PROGRESS = {
    "refused": 0,
    "accepted": 1,
    "stored": 2,
    "relayed": 3,
    "published": 4,
    "delivered": 5,
    "retried": 5,
    "dead_lettered": 6,
    "resent": 4,  # sent to the topic again: as far along as a publish
    "acked": 7,
    "notified": 8,
    "pushed": 9,
    "replayed": 9,
    "resync": 9,
}


class Thresholds:
    """``stuck_after_ms``: no next server stage within this long makes an unfinished click
    stuck (or lost, once the tab gave up or the deadline passed)."""

    __slots__ = ("stuck_after_ms",)

    def __init__(self, stuck_after_ms: float = DEFAULT_STUCK_AFTER_MS) -> None:
        if not stuck_after_ms > 0:
            raise ValueError("stuck_after_ms must be positive")
        self.stuck_after_ms = stuck_after_ms


def _clock(e: Entry) -> str:
    return _BROWSER if e.stage in BROWSER_STAGES else (e.process or "")


def _reference(entries: list[Entry]) -> str:
    """The clock the others are set against: the edge's, else the first server process's."""
    for stages in (_EDGE, None):
        server = [
            e
            for e in entries
            if e.stage not in BROWSER_STAGES and (stages is None or e.stage in stages)
        ]
        if server:
            return _clock(min(server, key=lambda e: e.at))
    return _BROWSER


def _bounds(
    clock: str, by_stage: dict[str, list[Entry]], offsets: dict[str, float]
) -> tuple[float, float]:
    """``(low, high)`` for ``clock``'s offset from the causal evidence against the others."""
    low, high = -float("inf"), float("inf")

    def at(e: Entry) -> float:
        return e.at + offsets[_clock(e)]

    for stage, groups in _CAUSES.items():
        group = next((g for g in groups if any(s in by_stage for s in g)), None)
        if group is None or stage not in by_stage:
            continue
        causes = [c for s in group for c in by_stage.get(s, ())]
        first = min(causes, key=at)
        for effect in by_stage[stage]:
            if _clock(effect) == clock and _clock(first) != clock:
                low = max(low, at(first) - effect.at)  # effect + o >= cause
            elif _clock(first) == clock and _clock(effect) != clock:
                high = min(high, at(effect) - first.at)  # cause + o <= effect
    # The same request timed on both sides. The edge journals ``accepted`` / ``refused`` once
    # the response was sent, so each follows the browser's first HTTP start (but may follow
    # its end too); the route's ``stored``, journaled by that process before its answer,
    # precedes the browser's last HTTP end. Whatever the pairing of retries, those hold.
    https = by_stage.get("http", [])
    edge = [e for s in _EDGE for e in by_stage.get(s, ())]
    if https and edge:
        start = min(h.at for h in https)
        ends = [h.at + h.duration_ms for h in https if h.duration_ms is not None]
        inside = [
            d
            for d in by_stage.get("stored", ())
            if any(d.process == e.process and d.at <= e.at for e in edge)
        ]
        for e in edge:
            if clock == _BROWSER:
                high = min(high, at(e) - start)  # start + o <= edge
            elif _clock(e) == clock:
                low = max(low, start + offsets[_BROWSER] - e.at)
        for d in inside if ends else ():
            if clock == _BROWSER:
                low = max(low, at(d) - max(ends))  # stored <= end + o
            elif _clock(d) == clock:
                high = min(high, max(ends) + offsets[_BROWSER] - d.at)
    return low, high


def offsets(entries: list[Entry]) -> dict[str, float]:
    """Milliseconds to add to each clock's times (browser: ``"browser"``; a server process:
    its name) so that causes precede effects; 0 wherever the evidence admits 0."""
    clocks = {_clock(e) for e in entries}
    result = dict.fromkeys(clocks, 0.0)
    if len(clocks) < 2:
        return result
    reference = _reference(entries)
    by_stage: dict[str, list[Entry]] = {}
    for e in entries:
        by_stage.setdefault(e.stage, []).append(e)
    for _ in range(len(clocks) + 1):  # each round settles at least one more clock
        changed = False
        for clock in clocks - {reference}:
            low, high = _bounds(clock, by_stage, result)
            # Causes first: with contradictory bounds (a lost span), the effect goes after.
            new = low if low > 0 or low > high else (high if high < 0 else 0.0)
            if new != result[clock]:
                result[clock], changed = new, True
        if not changed:
            break
    return result


def ordered(entries: list[Entry]) -> list[tuple[float, Entry]]:
    """``(corrected time, entry)`` in order."""
    shift = offsets(entries)
    timed = [(e.at + shift[_clock(e)], e) for e in entries]
    timed.sort(key=lambda pair: (pair[0], _RANK.get(pair[1].stage, len(_RANK)), pair[1].at))
    return timed


def _click_trace(entries: list[Entry]) -> str | None:
    ranked = sorted(
        (e for e in entries if e.trace_id), key=lambda e: (_RANK.get(e.stage, 99), e.at)
    )
    return ranked[0].trace_id if ranked else None


def _broken(timed: list[tuple[float, Entry]], click_trace: str | None) -> Entry | None:
    if click_trace is None:
        return None
    for _, e in timed:
        if e.trace_id != click_trace:
            return e
    return None


def _tab(entries: list[Entry]) -> dict[str, Any] | None:
    """The tab's own view: how its last ``settled`` says the click ended, after how long."""
    settled = [e for e in entries if e.stage == "settled"]
    if not settled:
        return None
    last = max(settled, key=lambda e: e.at)
    ms = None if last.duration_ms is None else round(max(0.0, last.duration_ms), 1)
    return {"outcome": last.outcome, "ms": ms}


def _tab_words(tab: dict[str, Any] | None) -> str:
    if tab is None:
        return ""
    how = {"timed_out": "timed out", None: "settled"}.get(tab["outcome"], tab["outcome"])
    return f"the tab {how}" + (f" after {tab['ms']:.0f} ms" if tab["ms"] is not None else "")


def _since_resend(server: list[Entry]) -> list[Entry]:
    """The server entries from the last ``resent`` on (all of them without one): an
    operator's resend starts the click's server side again, and what the first send ended
    with (its dead letter, the rejection its tab was told) is history."""
    for i in range(len(server) - 1, -1, -1):
        if server[i].stage == "resent":
            return server[i:]
    return server


def _attempts(server: list[Entry]) -> int:
    """Delivery attempts (a ``resent`` entry's attempt counts sends, not deliveries)."""
    return max((e.attempt or 0 for e in server if e.stage != "resent"), default=0)


def _end(server: list[Entry], has_tab: bool) -> tuple[str, Entry, str | None, str | None] | None:
    """``(state, entry, outcome, words)`` when the server side ended the click, else None.

    ``server`` is in causal order."""
    server = _since_resend(server)
    last = server[-1]
    if last.stage == "refused":  # a refusal the client did not retry
        return (
            "refused",
            last,
            last.outcome,
            "at the edge" + (f": {last.detail}" if last.detail else ""),
        )
    dead = [e for e in server if e.stage == "dead_lettered"]
    notified = [
        e for e in server if e.stage == "notified" and e.outcome in ("confirmed", "rejected")
    ]
    told = notified[-1] if notified else None
    # A dead letter ends the click unless something followed it: an ack (another group, a
    # redelivery) or an operator's resend, after which the click goes on like any other.
    if dead and not any(e.stage in _AFTER_DEAD for e in server[server.index(dead[-1]) :]):
        d = dead[-1]
        n = _attempts(server)
        reason = d.detail or d.outcome or "given up"
        how = "timed_out" if "deadline_exceeded" in (d.outcome, d.detail) else "failed"
        words = f"after {n} attempt{'s' * (n != 1)} ({reason})"
        if told is not None:
            words += f"; the tab was told {told.outcome}" + (f" ({told.code})" if told.code else "")
        return "dead_lettered", d, how, words
    if told is not None:
        if told.outcome == "rejected":
            return "rejected", told, "rejected", f"with {told.code}" if told.code else None
        return "confirmed", told, "confirmed", None
    accepted = [e for e in server if e.stage == "accepted"]
    if accepted and accepted[-1].outcome not in (None, "202"):
        a = accepted[-1]  # a synchronous command: its answer was the outcome
        return "confirmed", a, "answered", f"(answered {a.outcome})"
    if last.stage == "acked" and not has_tab:
        return "confirmed", last, "acked", "(acked; no tab to tell)"
    return None


def verdict(
    entries: list[Entry],
    now_ms: float,
    thresholds: Thresholds,
    *,
    restarted: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """The verdict object of the route's answer (``entries`` must not be empty).

    ``restarted`` maps a process name (:attr:`Entry.process`) to the Unix ms at which it last
    (re)started: a click that would be stuck or lost whose last server entry was written by a
    process that restarted after it is ``unknown`` (its later entries may have died with it).
    """
    return _verdict(ordered(entries), now_ms, thresholds, restarted)


def ending(entries: list[Entry]) -> tuple[str, str | None] | None:
    """How the server side ended the click, ``(state, outcome)`` (``("dead_lettered",
    "timed_out")``), whatever its trace says (a broken or sampled-out trace is the verdict's
    state, this one then only in its text); None while it has not ended."""
    mine = [e for _, e in _owned(ordered(entries))]
    server = [e for e in mine if e.stage not in BROWSER_STAGES]
    end = _end(server, any(e.client_id for e in mine)) if server else None
    return None if end is None else (end[0], end[2])


def _owned(timed: list[tuple[float, Entry]]) -> list[tuple[float, Entry]]:
    """Without the edge entries of other clients: the click belongs to the client of its first
    edge entry (a tab mints its id at the click, so nobody can send it before the tab). Anyone
    who learns an id (health, a shared link) can send a command naming it; the refusal the edge
    journals for it must not settle, or otherwise change, the owner's click."""
    edge = [e for _, e in timed if e.stage in _EDGE]
    if not edge:
        return timed
    owner = min(edge, key=lambda e: e.at).client_id
    return [(t, e) for t, e in timed if e.stage not in _EDGE or e.client_id == owner]


def _verdict(
    timed: list[tuple[float, Entry]],
    now_ms: float,
    thresholds: Thresholds,
    restarted: Mapping[str, float] | None,
) -> dict[str, Any]:
    timed = _owned(timed)
    entries = [e for _, e in timed]
    tab = _tab(entries)
    server = [e for e in entries if e.stage not in BROWSER_STAGES]
    has_tab = any(e.client_id for e in entries)
    end = _end(server, has_tab) if server else None
    if end is None:
        last_at, last = timed[-1]
        writer = last  # the entry written last, whose process may have died after it
        if not server:  # the server never journaled it: it stopped on the way there
            sent = [e for e in entries if e.stage in _BEFORE_SERVER] or entries
            last = max(sent, key=lambda e: (_RANK.get(e.stage, -1), e.at))
        else:
            # Browser entries arrive in batches, late: the server's last entry says how long
            # nothing has happened on its side; its furthest stage, where it stopped.
            writer = max(server, key=lambda e: e.at)
            last_at = writer.at
            last = max(_since_resend(server), key=lambda e: (_PROGRESS.get(e.stage, -1), e.at))
        idle = max(0.0, now_ms - last_at)
        deadline = max((e.deadline_ms or 0 for e in entries), default=0)
        past = now_ms - deadline if deadline and now_ms > deadline else None
        if idle > thresholds.stuck_after_ms:
            died = (restarted or {}).get(writer.process or "")
            if died is not None and died > writer.at:
                return _v(
                    "unknown",
                    writer.stage,
                    None,
                    idle,
                    f"after process {writer.process} restarted: its entries after "
                    f"{writer.stage} may have died with it",
                    tab,
                )
            why = f"at {last.stage}: no next stage for {idle:.0f} ms"
            if tab is not None or past is not None:  # the click is over for the user
                gave_up = _tab_words(tab) or f"the deadline passed {past:.0f} ms ago"
                return _v("lost", last.stage, None, idle, f"{why}; {gave_up}", tab)
            return _v("stuck", last.stage, None, idle, why, tab)
    timed_server = [(t, e) for t, e in timed if e.stage not in BROWSER_STAGES]
    if end is None:
        waiting = max(0.0, now_ms - last_at)
        state, stage, how, took = "in_flight", last.stage, None, waiting
        words = f"at {last.stage} for {waiting:.0f} ms"
        if tab is not None:
            words += f"; {_tab_words(tab)}"
    else:
        state, entry, how, extra = end
        stage = entry.stage
        end_at = next(t for t, e in timed_server if e is entry)
        took = max(0.0, end_at - timed[0][0])
        words = " ".join(w for w in (extra, f"in {took:.0f} ms") if w)
    broken = _broken(timed, _click_trace(entries))
    if broken is not None:
        why = (
            "arrived without trace context"
            if broken.trace_id is None
            else f"trace {broken.trace_id} is not the click's {_click_trace(entries)}"
        )
        return _v(
            "trace_broken",
            broken.stage,
            how,
            took,
            f"at {broken.stage}: {why}; {LABELS[state]} {words}",
            tab,
        )
    flags = [e.sampled for e in server if e.sampled is not None]
    if flags and not any(flags):
        return _v("sampled_out", stage, how, took, f"({LABELS[state]} {words})", tab)
    v = _v(state, stage, how, took, words, tab)
    if end is not None and end[1].code:
        v["code"] = end[1].code
    return v


def _v(
    state: str,
    stage: str,
    outcome: str | None,
    ms: float | None,
    text: str,
    tab: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "state": state,
        "stage": stage,
        "outcome": outcome,
        "ms": None if ms is None else round(ms, 1),
        "text": text,
        "tab": tab,
    }


def line(v: Mapping[str, Any]) -> str:
    """The verdict as one line for a person: ``lost at stored: no next stage for 31250 ms``."""
    state = str(v.get("state"))
    return f"{LABELS.get(state, state)} {v.get('text', '')}".rstrip()


def answer(
    entries: list[Entry],
    now_ms: float,
    thresholds: Thresholds,
    *,
    restarted: Mapping[str, float] | None = None,
) -> dict[str, Any]:
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
        "verdict": _verdict(timed, now_ms, thresholds, restarted),
        "stages": stages,
    }
