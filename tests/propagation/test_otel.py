"""ClicktracePropagator: selectable through OTEL_PROPAGATORS, stricter than the stock one
where the spec asks."""

from __future__ import annotations

from importlib.metadata import entry_points

from opentelemetry import baggage as otel_baggage
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from clicktrace.context import ClickContext, bound
from clicktrace.propagation._otel import ClicktracePropagator, click_from_context

TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
CORR = "01JD8X3Q7E8W5V4T2N9R6M0K1A"


def test_registered_as_the_clicktrace_entry_point() -> None:
    (entry,) = entry_points(group="opentelemetry_propagator", name="clicktrace")
    assert entry.load() is ClicktracePropagator


def test_extract_trace_baggage_and_ids() -> None:
    carrier = {"traceparent": TP, "tracestate": "a=1", "baggage": "k=v", "x-correlation-id": CORR}
    ctx = ClicktracePropagator().extract(carrier)
    sc = trace.get_current_span(ctx).get_span_context()
    assert sc.trace_id == 0x4BF92F3577B34DA6A3CE929D0E0E4736 and sc.is_remote
    assert otel_baggage.get_baggage("k", ctx) == "v"
    click = click_from_context(ctx)
    assert click is not None and click.correlation_id == CORR


def test_bad_input_leaves_the_context_as_it_was() -> None:
    ctx = ClicktracePropagator().extract({"traceparent": "garbage", "x-correlation-id": "x"})
    assert not trace.get_current_span(ctx).get_span_context().is_valid
    assert click_from_context(ctx) is None


def test_deviations_from_the_stock_propagator() -> None:
    stock, ours = TraceContextTextMapPropagator(), ClicktracePropagator()
    two = {"traceparent": [TP, TP.replace("01", "00", 1)]}
    assert trace.get_current_span(stock.extract(two)).get_span_context().is_valid
    assert not trace.get_current_span(ours.extract(two)).get_span_context().is_valid
    dup = {"traceparent": TP, "tracestate": "a=1,b=2,a=3"}
    stock_state = trace.get_current_span(stock.extract(dup)).get_span_context().trace_state
    our_state = trace.get_current_span(ours.extract(dup)).get_span_context().trace_state
    assert len(stock_state) == 0
    assert dict(our_state.items()) == {"a": "1", "b": "2"}


def test_inject_writes_the_current_span_and_click() -> None:
    tracer = TracerProvider().get_tracer("test")
    carrier: dict[str, str] = {}
    with tracer.start_as_current_span("op") as span, bound(ClickContext(CORR, deadline_ms=5)):
        ClicktracePropagator().inject(carrier)
    sc = span.get_span_context()
    assert carrier["traceparent"] == f"00-{sc.trace_id:032x}-{sc.span_id:016x}-{sc.trace_flags:02x}"
    assert carrier["x-correlation-id"] == CORR
    assert carrier["x-clicktrace-deadline"] == "5"


def test_inject_prefers_the_ids_extracted_into_the_context() -> None:
    propagator = ClicktracePropagator()
    ctx = propagator.extract({"traceparent": TP, "x-correlation-id": CORR})
    carrier: dict[str, str] = {}
    propagator.inject(carrier, ctx)
    assert carrier == {"traceparent": TP, "x-correlation-id": CORR}
    assert propagator.fields >= {"traceparent", "tracestate", "baggage", "x-correlation-id"}
