"""assert_one_trace follows span kinds, not names, lets any span sit between the hops, and
says in words where a broken trace broke."""

from __future__ import annotations

import itertools
import secrets

import pytest

from clicktrace.testing import SERVER_LOOP, Span, TraceBroken, assert_one_trace, trace_problems

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
OTHER = "0af7651916cd43dd8448eb211c80319c"
CLICK = "01JD8X3Q7E8W5V4T2N9R6M0K1A"
_ids = itertools.count(1)


def span(
    name: str,
    kind: str,
    parent: Span | str = "",
    *,
    trace: str = TRACE,
    service: str = "api",
    click: str | None = CLICK,
) -> Span:
    parent_id = parent.span_id if isinstance(parent, Span) else parent
    attributes = {"clicktrace.correlation_id": click} if click else {}
    return Span(trace, f"{next(_ids):016x}", parent_id, name, kind, service, attributes)


def loop(names: list[str] | None = None) -> list[Span]:
    """A healthy click, with a framework's INTERNAL spans between the hops."""
    n = names or [secrets.token_hex(4) for _ in range(8)]
    action = span(n[0], "INTERNAL", service="browser")
    client = span(n[1], "CLIENT", action, service="browser")
    server = span(n[2], "SERVER", client)
    route = span(n[3], "INTERNAL", server)  # e.g. FastAPI's own span
    publish = span(n[4], "PRODUCER", route)
    consume = span(n[5], "CONSUMER", publish, service="worker")
    project = span("project", "INTERNAL", consume, service="worker")
    notify = span(n[6], "PRODUCER", project, service="worker")
    received = span(n[7], "CONSUMER", notify, service="browser")
    return [
        action,
        client,
        server,
        route,
        publish,
        consume,
        project,
        notify,
        received,
        span("http send", "INTERNAL", server),
    ]


def test_a_whole_loop_passes_whatever_the_spans_are_called() -> None:
    spans = loop()
    action = spans[0]
    assert trace_problems(spans, root_span_id=action.span_id) == []
    assert trace_problems(spans, correlation_id=CLICK) == []
    assert trace_problems(spans, trace_id=TRACE) == []
    assert_one_trace(spans, trace_id=TRACE, root_span_id=action.span_id)


def test_the_root_span_need_not_have_been_received() -> None:
    spans = loop()[2:]  # a test that sent its own traceparent: the root is its span id
    root = spans[0].parent_span_id
    assert trace_problems(spans, trace_id=TRACE, root_span_id=root) == []


def test_the_server_loop_ends_at_the_notification_producer() -> None:
    spans = [s for s in loop() if s.kind != "CONSUMER" or s.service != "browser"]
    assert trace_problems(spans, trace_id=TRACE, hops=SERVER_LOOP) == []
    with pytest.raises(TraceBroken, match="browser's notification CONSUMER span"):
        assert_one_trace(spans, trace_id=TRACE)


def test_a_lost_context_on_the_bus_says_where_and_finds_the_click_elsewhere() -> None:
    spans = loop(
        [
            "click",
            "POST",
            "POST /todos",
            "route",
            "publish todos",
            "process todos",
            "notify",
            "received",
        ]
    )
    publish = spans[4]
    # The consumer started a new trace: the bus dropped the traceparent.
    lost = [
        s
        if s.trace_id != TRACE or s.kind not in ("CONSUMER",) or s.service != "worker"
        else Span(OTHER, s.span_id, "", s.name, s.kind, s.service, s.attributes)
        for s in spans
    ]
    problems = trace_problems(lost, trace_id=TRACE, root_span_id=spans[0].span_id)
    assert problems[0] == (
        f"trace {TRACE} breaks after the bus PRODUCER span {publish.describe()}: "
        "the bus CONSUMER span is not below it"
    )
    assert any(
        f"goes on in another trace {OTHER} from 'process todos' (CONSUMER, "
        "service worker): the trace context was lost" in p
        for p in problems
    )


def test_a_missing_parent_is_named() -> None:
    spans = loop()
    server = spans[2]
    del spans[1]  # the browser's CLIENT span never arrived
    problems = trace_problems(spans, trace_id=TRACE, root_span_id=spans[0].span_id)
    assert problems[0] == (
        f"trace {TRACE} breaks at the start: the API's SERVER span is not "
        f"below the root span {spans[0].span_id}"
    )
    assert f"{server.describe()} is in the trace, but its parent" in problems[1]


def test_without_a_server_span_it_breaks_at_the_start() -> None:
    action = span("click", "INTERNAL", service="browser")
    problems = trace_problems([action, span("fetch", "CLIENT", action)], trace_id=TRACE)
    assert problems == [
        f"trace {TRACE} breaks at the start: the API's SERVER span is not "
        f"below the root span {action.span_id}"
    ]


def test_an_unknown_click_or_an_ambiguous_trace_is_said_so() -> None:
    assert trace_problems(loop(), correlation_id="01JD8X3Q7E8W5V4T2N9R6M0K1Z") == [
        "no root span carries clicktrace.correlation_id 01JD8X3Q7E8W5V4T2N9R6M0K1Z: the "
        "browser's action span never arrived"
    ]
    two_roots = [*loop(), span("stray", "INTERNAL")]
    assert trace_problems(two_roots, trace_id=TRACE) == [f"trace {TRACE} has 2 root spans, not one"]
    assert trace_problems(loop()) == ["give the trace_id, the root_span_id or the correlation_id"]


def test_a_notification_from_another_branch_does_not_count() -> None:
    spans = loop()
    server = spans[2]
    # A PRODUCER → CONSUMER pair hanging off the SERVER span but not below the bus CONSUMER.
    orphan_notify = span("notify", "PRODUCER", server)
    trimmed = [s for s in spans if s.name not in (spans[7].name, spans[8].name)]
    problems = trace_problems(
        [*trimmed, orphan_notify, span("received", "CONSUMER", orphan_notify)], trace_id=TRACE
    )
    # Kinds alone cannot tell which CONSUMER was the bus's: either may be named, never a pass.
    assert len(problems) == 1
    assert problems[0].endswith(": the notification PRODUCER span is not below it")
