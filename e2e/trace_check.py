"""What one click's trace must contain, end to end: a pure check over received spans, so
that it can itself be tested against a trace with a broken link."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class SpanLike(Protocol):
    @property
    def trace_id(self) -> str: ...
    @property
    def span_id(self) -> str: ...
    @property
    def parent_span_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...


def loop_problems(spans: Sequence[SpanLike], trace_id: str, browser_span_id: str) -> list[str]:
    """Each link of click → server → bus → projection → notification that is missing or
    not in the browser's trace (empty when the whole loop is one trace)."""
    problems = []
    mine = [s for s in spans if s.trace_id == trace_id]
    by_id = {s.span_id: s for s in mine}

    def find(what: str, ok: list[SpanLike]) -> SpanLike | None:
        if not ok:
            problems.append(f"no {what} span in trace {trace_id}")
            return None
        return ok[0]

    server = find("SERVER", [s for s in mine if s.kind == "SERVER"
                             and s.parent_span_id == browser_span_id])
    producer = find("bus PRODUCER", [s for s in mine if s.kind == "PRODUCER"
                                     and "products" in s.name])
    consumer = find("bus CONSUMER", [s for s in mine if s.kind == "CONSUMER"])
    projection = find("projection", [s for s in mine if s.name.startswith("project ")])
    find("notification PRODUCER", [s for s in mine if s.kind == "PRODUCER"
                                   and s is not producer and s.parent_span_id in by_id])
    if server and producer and not _descends(producer, server, by_id):
        problems.append("the bus PRODUCER span does not descend from the SERVER span")
    if producer and consumer and not _descends(consumer, producer, by_id):
        problems.append("the CONSUMER span does not descend from the PRODUCER span")
    if consumer and projection and not _descends(projection, consumer, by_id):
        problems.append("the projection span does not descend from the CONSUMER span")
    return problems


def _descends(child: SpanLike, ancestor: SpanLike, by_id: dict[str, SpanLike]) -> bool:
    seen = 0
    node: SpanLike | None = child
    while node is not None and seen < 64:
        if node.parent_span_id == ancestor.span_id:
            return True
        node = by_id.get(node.parent_span_id)
        seen += 1
    return False
