"""The bus envelope: round trips, schema evolution, and the context it carries."""

from __future__ import annotations

import msgspec
import pytest
from opentelemetry.sdk.trace import TracerProvider

from clicktrace.context import ClickContext, bound
from clicktrace.envelope import decode, encode, new_envelope
from clicktrace.ids import parse_id

CORR = "01JD8X3Q7E8W5V4T2N9R6M0K1A"
CLIENT = "01JD8X3Q7E8W5V4T2N9R6M0K1C"


def test_new_envelope_carries_the_click_and_the_current_span(provider: TracerProvider) -> None:
    with (
        bound(ClickContext(CORR, client_id=CLIENT, deadline_ms=1_764_000_000_000)),
        provider.get_tracer("t").start_as_current_span("command") as span,
    ):
        envelope = new_envelope("ProductRenamed", {"id": 1})
    meta = envelope.metadata
    assert (meta.correlation_id, meta.client_id, meta.deadline) == (CORR, CLIENT, 1_764_000_000_000)
    extracted = meta.extract()
    assert extracted.traceparent is not None
    assert extracted.traceparent.trace_id == span.get_span_context().trace_id
    assert extracted.traceparent.span_id == span.get_span_context().span_id
    assert parse_id(meta.message_id) == meta.message_id


def test_without_a_click_a_new_correlation_starts() -> None:
    envelope = new_envelope("ProductCreated", {"id": 2})
    assert parse_id(envelope.metadata.correlation_id) is not None
    assert envelope.metadata.traceparent is None
    assert envelope.metadata.client_id is None


def test_round_trip_omits_absent_fields() -> None:
    envelope = new_envelope("ProductCreated", {"id": 2, "name": "Tamper"})
    data = encode(envelope)
    assert b"tracestate" not in data and b"deadline" not in data
    assert decode(data) == envelope


def test_old_readers_accept_new_writers() -> None:
    data = msgspec.json.decode(encode(new_envelope("ProductCreated", {"id": 2})))
    data["metadata"]["priority"] = "high"  # a field a later version adds
    data["schema"] = 2
    assert decode(msgspec.json.encode(data)).payload == {"id": 2}


@pytest.mark.parametrize("data", [b"", b"{", b"[]", b'{"metadata": {}, "payload": 1}'])
def test_malformed_data_is_refused_with_msgspec_errors(data: bytes) -> None:
    with pytest.raises((msgspec.DecodeError, msgspec.ValidationError)):
        decode(data)
