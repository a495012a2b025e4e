"""OTLP/JSON decoding of the browser's spans: attributes, fields, spans, requests."""

from __future__ import annotations

import base64
import copy
import unicodedata
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict  # type: ignore[import-untyped]
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from clicktrace.ingest._otlp import (
    MAX_ARRAY_LENGTH,
    MAX_ATTRIBUTE_VALUE_LENGTH,
    MAX_NAME_LENGTH,
    MAX_SPANS_PER_REQUEST,
    clean_text,
    decode_request,
    parse_attributes,
)

TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
ROOT_ID = 0x00F067AA0BA902B7
CHILD_ID = 0xB7AD6B7169203331
BASE = {"service.name": "browser"}


def test_decodes_ids_times_kind_status_events_and_resource(valid_body: dict[str, Any]) -> None:
    decoded = decode_request(valid_body, BASE)
    assert decoded.invalid is None and decoded.rejected == 0
    root, child = decoded.spans
    assert root.context is not None and child.context is not None
    assert (root.context.trace_id, root.context.span_id, root.parent) == (TRACE_ID, ROOT_ID, None)
    assert child.context.trace_id == TRACE_ID and child.context.span_id == CHILD_ID
    assert child.parent is not None and child.parent.span_id == ROOT_ID
    assert root.kind is SpanKind.INTERNAL and child.kind is SpanKind.CLIENT
    assert (child.start_time, child.end_time) == (1764000000010000000, 1764000000090000000)
    assert child.status.status_code is StatusCode.ERROR and child.status.description == "HTTP 500"
    assert root.status.status_code is StatusCode.UNSET
    assert [(e.name, dict(e.attributes or {})) for e in child.events] == [("retry", {"attempt": 2})]
    assert root.attributes == {"clicktrace.correlation_id": "01JDQ3N7R0ZKX2Y8W5V4T3S2R1"}
    assert root.context.trace_flags.sampled  # processors drop unsampled spans
    # The server names the service; the browser's other resource attributes are kept.
    assert dict(root.resource.attributes) == {"service.name": "browser", "browser.language": "en"}
    assert root.instrumentation_scope is not None
    assert root.instrumentation_scope.name == "clicktrace-pinia"


def test_enum_names_and_numeric_times_are_accepted(valid_body: dict[str, Any]) -> None:
    span = valid_body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span.update(
        kind="SPAN_KIND_CONSUMER",
        status={"code": "STATUS_CODE_OK"},
        startTimeUnixNano=5,
        endTimeUnixNano=6,
        traceId=span["traceId"].upper(),
        traceState="vendor=abc",
        name="n" * (MAX_NAME_LENGTH + 10),
    )
    decoded = decode_request(valid_body, BASE)
    span_out = decoded.spans[0]
    assert span_out.kind is SpanKind.CONSUMER and span_out.status.status_code is StatusCode.OK
    assert (span_out.start_time, span_out.end_time) == (5, 6)
    assert span_out.context is not None and span_out.context.trace_id == TRACE_ID
    assert span_out.context.trace_state.to_header() == "vendor=abc"
    assert len(span_out.name) == MAX_NAME_LENGTH


@pytest.mark.parametrize(
    "change",
    [
        {"traceId": "0" * 32},
        {"traceId": "xyz"},
        {"spanId": "00f067aa0ba902"},
        {"spanId": None},
        {"parentSpanId": "0000000000000000"},
        {"startTimeUnixNano": "-1"},
        {"endTimeUnixNano": "1"},
        {"endTimeUnixNano": None},
        {"kind": 9},
        {"kind": True},
        {"kind": 2},
        {"kind": "SPAN_KIND_SERVER"},
        {"kind": 4},  # SERVER, PRODUCER: not a browser's
        {"status": {"code": 7}},
        {"status": "bad"},
        {"name": ""},
        {"events": {}},
        {"events": [{"name": "e"}]},
    ],
)
def test_a_bad_span_is_rejected_alone(valid_body: dict[str, Any], change: dict[str, Any]) -> None:
    valid_body["resourceSpans"][0]["scopeSpans"][0]["spans"][1].update(change)
    decoded = decode_request(valid_body, BASE)
    assert decoded.invalid is None and decoded.rejected == 1
    assert [s.name for s in decoded.spans] == ["rename product"]


@pytest.mark.parametrize(
    "body",
    [
        [],
        "x",
        None,
        {"resourceSpans": {}},
        {"resourceSpans": [1]},
        {"resourceSpans": [{"scopeSpans": "x"}]},
        {"resourceSpans": [{"scopeSpans": [{"spans": 1}]}]},
    ],
)
def test_a_body_of_the_wrong_shape_is_invalid(body: Any) -> None:
    decoded = decode_request(body, BASE)
    assert decoded.invalid and not decoded.too_many and decoded.spans == ()


@pytest.mark.parametrize(
    "scope",
    [
        {"name": "opentelemetry.instrumentation.asgi", "version": "0.50b0"},
        {"name": ""},
        {},
        None,
        "clicktrace-pinia",
    ],
)
def test_spans_of_another_scope_are_rejected(valid_body: dict[str, Any], scope: Any) -> None:
    valid_body["resourceSpans"][0]["scopeSpans"][0]["scope"] = scope
    decoded = decode_request(valid_body, BASE)
    assert decoded.spans == () and decoded.rejected == 2


def test_the_apps_own_scopes_can_be_allowed(valid_body: dict[str, Any]) -> None:
    valid_body["resourceSpans"][0]["scopeSpans"][0]["scope"] = {"name": "my-web"}
    assert len(decode_request(valid_body, BASE, scopes=frozenset({"my-web"})).spans) == 2


def test_the_verified_client_id_is_stamped_and_the_payloads_is_ignored(
    valid_body: dict[str, Any],
) -> None:
    forged = {"key": "clicktrace.client_id", "value": {"stringValue": "01JDQ3N7R0ZKX2Y8W5V4T3S2R9"}}
    valid_body["resourceSpans"][0]["resource"]["attributes"].append(forged)
    for span in valid_body["resourceSpans"][0]["scopeSpans"][0]["spans"]:
        span["attributes"].append(forged)
    verified = "01JDQ3N7R0ZKX2Y8W5V4T3S2R1"
    for client_id in (verified, None):
        spans = decode_request(valid_body, BASE, client_id=client_id).spans
        assert len(spans) == 2
        for span in spans:
            assert (span.attributes or {}).get("clicktrace.client_id") == client_id
            assert span.resource.attributes.get("clicktrace.client_id") == client_id


def test_control_characters_are_escaped_and_strings_bounded(valid_body: dict[str, Any]) -> None:
    span = valid_body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["name"] = "rename\x1b[2J\nproduct\u2028"
    span["status"] = {"code": 2, "message": "bad\r\nERROR forged log line"}
    span["attributes"] += [
        {"key": "note", "value": {"stringValue": "a\x00b\x7fc\x85d\ttab"}},
        {"key": "long", "value": {"stringValue": "\x01" * (MAX_ATTRIBUTE_VALUE_LENGTH + 5)}},
        {"key": "bad\nkey", "value": {"stringValue": "dropped"}},
        {"key": "list", "value": {"arrayValue": {"values": [{"stringValue": "x\ny"}]}}},
    ]
    out = decode_request(valid_body, BASE).spans[0]
    attributes = dict(out.attributes or {})
    assert out.name == "rename\\u001b[2J\\u000aproduct\\u2028"
    assert out.status.description == "bad\\u000d\\u000aERROR forged log line"
    assert attributes["note"] == "a\\u0000b\\u007fc\\u0085d\\u0009tab"
    assert len(str(attributes["long"])) == MAX_ATTRIBUTE_VALUE_LENGTH
    assert attributes["list"] == ("x\\u000ay",)
    assert "bad\nkey" not in attributes


@given(st.text(max_size=300))
def test_clean_text_leaves_no_control_character(text: str) -> None:
    cleaned = clean_text(text, 100)
    assert len(cleaned) <= 100
    assert not any(unicodedata.category(c) in ("Cc", "Cs") or c in "\u2028\u2029" for c in cleaned)
    if text.isprintable():
        assert cleaned == text[:100]


def test_too_many_spans_is_refused_before_any_is_built() -> None:
    spans: list[dict[str, Any]] = [{}] * (MAX_SPANS_PER_REQUEST + 1)
    body: dict[str, Any] = {"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}
    decoded = decode_request(body, BASE)
    assert decoded.too_many and decoded.spans == ()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "resourceSpans",
                    "scopeSpans",
                    "spans",
                    "traceId",
                    "spanId",
                    "parentSpanId",
                    "startTimeUnixNano",
                    "endTimeUnixNano",
                    "kind",
                    "status",
                    "code",
                    "events",
                    "name",
                    "attributes",
                    "resource",
                ]
            )
            | st.text(max_size=8),
            inner,
            max_size=5,
        )
    ),
    max_leaves=30,
)


@settings(max_examples=300)
@given(json_values)
def test_arbitrary_json_never_raises(data: Any) -> None:
    decoded = decode_request(data, BASE)
    if decoded.invalid is not None:
        assert decoded.spans == () and decoded.rejected == 0
    for span in decoded.spans:  # whatever gets through is a well-formed span
        assert span.context is not None and span.context.trace_id and span.context.span_id
        assert span.start_time is not None and span.end_time is not None
        assert 0 < span.start_time <= span.end_time


def test_round_trip_through_the_standard_otlp_encoder(valid_body: dict[str, Any]) -> None:
    """What OpenTelemetry's own OTLP encoder makes of our spans decodes to the same spans."""
    first = decode_request(valid_body, BASE).spans
    message = MessageToDict(encode_spans(first))
    for rs in message["resourceSpans"]:  # OTLP/JSON writes ids as hex, proto3 JSON as base64
        for span in rs["scopeSpans"][0]["spans"]:
            for key in ("traceId", "spanId", "parentSpanId"):
                if key in span:
                    span[key] = base64.b64decode(span[key]).hex()
    again = decode_request(message, BASE)
    assert again.rejected == 0

    def summary(span: ReadableSpan) -> tuple[Any, ...]:
        return (
            span.name,
            span.context,
            span.parent.span_id if span.parent else None,
            span.kind,
            span.start_time,
            span.end_time,
            dict(span.attributes or {}),
            span.status.status_code,
            span.status.description,
            [(e.name, e.timestamp) for e in span.events],
            dict(span.resource.attributes),
        )

    assert sorted(map(summary, again.spans), key=str) == sorted(map(summary, first), key=str)


def kv(key: Any, value: Any) -> dict[str, Any]:
    return {"key": key, "value": value}


def test_reads_each_primitive_kind() -> None:
    parsed = parse_attributes(
        [
            kv("s", {"stringValue": "hello"}),
            kv("i", {"intValue": "-42"}),
            kv("n", {"intValue": 7}),
            kv("b", {"boolValue": True}),
            kv("d", {"doubleValue": 1.5}),
            kv("a", {"arrayValue": {"values": [{"stringValue": "x"}, {"stringValue": "y"}]}}),
        ]
    )
    assert parsed == {"s": "hello", "i": -42, "n": 7, "b": True, "d": 1.5, "a": ("x", "y")}


def test_drops_what_does_not_fit() -> None:
    parsed = parse_attributes(
        [
            "not an object",
            kv("", {"stringValue": "empty key"}),
            kv(3, {"stringValue": "key not a string"}),
            kv("big", {"intValue": str(2**63)}),
            kv("sign", {"intValue": "--5"}),
            kv("boolint", {"intValue": True}),
            kv("mixed", {"arrayValue": {"values": [{"stringValue": "x"}, {"intValue": "1"}]}}),
            kv("nested", {"kvlistValue": {"values": []}}),
            kv("two", {"stringValue": "a", "boolValue": True}),
            kv("ok", {"stringValue": "kept"}),
        ]
    )
    assert parsed == {"ok": "kept"}


def test_caps_count_and_lengths() -> None:
    many = [kv(f"k{i}", {"intValue": i}) for i in range(10)]
    assert list(parse_attributes(many, limit=3)) == ["k0", "k1", "k2"]
    long = parse_attributes([kv("s", {"stringValue": "x" * (MAX_ATTRIBUTE_VALUE_LENGTH + 5)})])
    assert long["s"] == "x" * MAX_ATTRIBUTE_VALUE_LENGTH
    array = [{"boolValue": True}] * (MAX_ARRAY_LENGTH + 1)
    parsed = parse_attributes([kv("a", {"arrayValue": {"values": array}})])["a"]
    assert isinstance(parsed, tuple) and len(parsed) == MAX_ARRAY_LENGTH


attribute_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(attribute_json_values)
def test_arbitrary_json_never_breaks_the_attribute_reader(value: Any) -> None:
    parse_attributes(value)
    parse_attributes([kv("k", value)])


def test_defaults_stand_under_the_senders_attributes_and_base_over_them(
    valid_body: dict[str, Any],
) -> None:
    defaults = {"service.name": "browser", "deployment.environment": "dev"}
    kept = decode_request(valid_body, {}, defaults=defaults).spans[0].resource.attributes
    assert (kept["service.name"], kept["deployment.environment"]) == ("demo-web", "dev")
    forced = decode_request(valid_body, {"service.name": "shop"}, defaults=defaults)
    assert forced.spans[0].resource.attributes["service.name"] == "shop"
    blank = copy.deepcopy(valid_body)
    blank["resourceSpans"][0]["resource"]["attributes"] = [
        {"key": "service.name", "value": {"stringValue": ""}}
    ]
    named = decode_request(blank, {}, defaults=defaults).spans[0].resource.attributes
    assert named["service.name"] == "browser"  # a blank name is no name
