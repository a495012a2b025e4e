"""Does one click's trace hold together? A pure check over received spans, by span kind, not
name: from the browser's action span down to the span that brought the outcome back, each hop
must descend from the one before. Spans in between (a framework's own INTERNAL spans, the
HTTP CLIENT span) are allowed anywhere. On failure it says in words where the trace broke."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from clicktrace.testing._spans import Span

__all__ = ["BROWSER_LOOP", "SERVER_LOOP", "TraceBroken", "assert_one_trace", "trace_problems"]

# The browser's click → API → bus → projection → notification → the browser again.
BROWSER_LOOP = ("SERVER", "PRODUCER", "CONSUMER", "PRODUCER", "CONSUMER")
# The same loop seen from the server alone (an in-process test without a browser).
SERVER_LOOP = ("SERVER", "PRODUCER", "CONSUMER", "PRODUCER")
_WORDS = {
    ("SERVER", 0): "the API's SERVER span",
    ("PRODUCER", 1): "the bus PRODUCER span",
    ("CONSUMER", 2): "the bus CONSUMER span",
    ("PRODUCER", 3): "the notification PRODUCER span",
    ("CONSUMER", 4): "the browser's notification CONSUMER span",
}
_MAX_DEPTH = 256


class TraceBroken(AssertionError):
    """The click's spans do not form one connected tree; the message says where."""


def _word(hops: Sequence[str], i: int) -> str:
    if hops[: len(BROWSER_LOOP)] == BROWSER_LOOP[: len(hops)]:
        return _WORDS.get((hops[i], i), f"a {hops[i]} span")
    return f"a {hops[i]} span (hop {i + 1})"


def _root(
    spans: Sequence[Span],
    trace_id: str | None,
    root_span_id: str | None,
    correlation_id: str | None,
) -> tuple[str | None, str | None, list[str]]:
    """The trace and its root span id, found from what the caller knows."""
    if root_span_id is not None and trace_id is None:
        trace_id = next((s.trace_id for s in spans if s.span_id == root_span_id), None)
    if trace_id is None and correlation_id is not None:
        roots = [s for s in spans if s.correlation_id == correlation_id and not s.parent_span_id]
        if not roots:
            return (
                None,
                None,
                [
                    f"no root span carries clicktrace.correlation_id "
                    f"{correlation_id}: the browser's action span never arrived"
                ],
            )
        trace_id, root_span_id = roots[0].trace_id, roots[0].span_id
    if trace_id is None:
        return None, None, ["give the trace_id, the root_span_id or the correlation_id"]
    if root_span_id is None:
        roots = [s for s in spans if s.trace_id == trace_id and not s.parent_span_id]
        if len(roots) != 1:
            return trace_id, None, [f"trace {trace_id} has {len(roots)} root spans, not one"]
        root_span_id = roots[0].span_id
    return trace_id, root_span_id, []


def trace_problems(
    spans: Iterable[Span],
    *,
    trace_id: str | None = None,
    root_span_id: str | None = None,
    correlation_id: str | None = None,
    hops: Sequence[str] = BROWSER_LOOP,
) -> list[str]:
    """What is wrong with the click's trace, in words (empty when it holds together).

    The trace is ``trace_id``, or the one holding ``root_span_id``, or the one whose root span
    carries ``correlation_id``. ``root_span_id`` (the browser's action span, or the span id
    of the ``traceparent`` a test sent itself) need not be among the spans. ``hops`` are the
    span kinds each descending from the one before, in order. Pass every span received: a
    span of the same correlation id found in another trace tells where the context was lost.
    """
    every = list(spans)
    trace_id, root_span_id, problems = _root(every, trace_id, root_span_id, correlation_id)
    if problems or trace_id is None or root_span_id is None:
        return problems
    mine = [s for s in every if s.trace_id == trace_id]
    children: dict[str, list[Span]] = defaultdict(list)
    for s in mine:
        children[s.parent_span_id].append(s)
    best, best_at = 0, None
    stack: list[tuple[str, int, Span | None, int]] = [(root_span_id, 0, None, 0)]
    while stack and best < len(hops):
        span_id, matched, at, depth = stack.pop()
        if matched > best:
            best, best_at = matched, at
        if depth >= _MAX_DEPTH:
            continue
        for child in children.get(span_id, ()):
            hit = matched < len(hops) and child.kind == hops[matched]
            stack.append(
                (child.span_id, matched + 1 if hit else matched, child if hit else at, depth + 1)
            )
    if best == len(hops):
        return []
    if best_at is None:
        problems.append(
            f"trace {trace_id} breaks at the start: {_word(hops, 0)} is not "
            f"below the root span {root_span_id}"
        )
    else:
        problems.append(
            f"trace {trace_id} breaks after {_word(hops, best - 1)} "
            f"{best_at.describe()}: {_word(hops, best)} is not below it"
        )
    problems.extend(_clues(every, mine, trace_id, root_span_id, correlation_id))
    return problems


def _clues(
    every: Sequence[Span],
    mine: Sequence[Span],
    trace_id: str,
    root_span_id: str,
    correlation_id: str | None,
) -> list[str]:
    """Why it broke, where the spans tell: orphans in the trace, the click in another trace."""
    clues = []
    known = {s.span_id for s in mine} | {root_span_id}
    for s in mine:
        if s.parent_span_id and s.parent_span_id not in known:
            clues.append(
                f"{s.describe()} is in the trace, but its parent {s.parent_span_id} "
                "was never received (not exported yet, sampled out, or lost)"
            )
    if correlation_id is None:
        correlation_id = next((s.correlation_id for s in mine if s.correlation_id), None)
    if correlation_id is not None:
        elsewhere = [
            s for s in every if s.trace_id != trace_id and s.correlation_id == correlation_id
        ]
        for other in sorted({s.trace_id for s in elsewhere}):
            theirs = [s for s in every if s.trace_id == other]
            ids = {s.span_id for s in theirs}
            # Name the other trace's root: where the lost context was replaced.
            first = next((s for s in theirs if s.parent_span_id not in ids), theirs[0])
            clues.append(
                f"the same click (correlation id {correlation_id}) goes on in another "
                f"trace {other} from {first.describe()}: the trace context was lost "
                "on the way there"
            )
    return clues


def assert_one_trace(
    spans: Iterable[Span],
    *,
    trace_id: str | None = None,
    root_span_id: str | None = None,
    correlation_id: str | None = None,
    hops: Sequence[str] = BROWSER_LOOP,
) -> None:
    """Raise :class:`TraceBroken` saying where, unless the click's spans form one connected
    tree through ``hops`` (see :func:`trace_problems`)."""
    problems = trace_problems(
        spans,
        trace_id=trace_id,
        root_span_id=root_span_id,
        correlation_id=correlation_id,
        hops=hops,
    )
    if problems:
        raise TraceBroken("; ".join(problems))
