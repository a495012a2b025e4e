"""The OTLP/HTTP receiver (fixture ``clicktrace_otlp``) read through a real OTLP/HTTP
exporter."""

from __future__ import annotations

import os

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from clicktrace.ids import new_id
from clicktrace.testing import OtlpReceiver
from clicktrace.testing._ports import PORTS_ENV


def test_the_receiver_gets_what_an_otlp_exporter_sends(clicktrace_otlp: OtlpReceiver) -> None:
    provider = TracerProvider(resource=Resource({"service.name": "todo-api"}))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=clicktrace_otlp.endpoint + "/v1/traces"))
    )
    tracer = provider.get_tracer("test")
    click = new_id()
    with (
        tracer.start_as_current_span("POST /todos", kind=SpanKind.SERVER) as server,
        tracer.start_as_current_span(
            "publish todos",
            kind=SpanKind.PRODUCER,
            attributes={"clicktrace.correlation_id": click, "attempt": 2},
        ),
    ):
        pass
    provider.shutdown()
    trace_id = f"{server.get_span_context().trace_id:032x}"
    spans = clicktrace_otlp.wait_for(
        lambda got: len([s for s in got if s.trace_id == trace_id]) == 2
    )
    mine = {s.name: s for s in spans if s.trace_id == trace_id}
    assert mine["POST /todos"].kind == "SERVER"
    assert mine["publish todos"].parent_span_id == mine["POST /todos"].span_id
    assert mine["publish todos"].service == "todo-api"
    assert mine["publish todos"].correlation_id == click
    assert mine["publish todos"].attributes["attempt"] == 2


def test_the_receiver_listens_on_a_port_of_the_test_range(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = os.environ.get(PORTS_ENV) or "20000-29999"  # the run's own range, when it has one
    monkeypatch.setenv(PORTS_ENV, spec)
    low, _, high = spec.partition("-")
    with OtlpReceiver() as receiver:
        port = int(receiver.endpoint.rsplit(":", 1)[1])
    assert int(low) <= port <= int(high or low)
