"""Getter/Setter pairs: one inject/extract for every carrier shape."""

from __future__ import annotations

from typing import Any

from clicktrace.propagation._carriers import (
    ASGI_GETTER,
    ASGI_SETTER,
    ATTRIBUTE_GETTER,
    EXACT_MAPPING_GETTER,
    MAPPING_GETTER,
    MAPPING_SETTER,
)


def test_asgi_headers() -> None:
    headers = [(b"traceparent", b"a"), (b"other", b"x"), (b"traceparent", b"b")]
    assert ASGI_GETTER.get(headers, "traceparent") == ["a", "b"]
    assert ASGI_GETTER.get(headers, "missing") is None
    ASGI_SETTER.set(headers, "traceparent", "c")
    assert headers == [(b"other", b"x"), (b"traceparent", b"c")]


def test_attributes_read_in_place() -> None:
    class Meta:
        traceparent = "a"
        deadline = 1764000000000
        flag = True
        causation_id = None

    assert ATTRIBUTE_GETTER.get(Meta(), "traceparent") == ["a"]
    assert ATTRIBUTE_GETTER.get(Meta(), "deadline") == ["1764000000000"]
    assert ATTRIBUTE_GETTER.get(Meta(), "flag") is None
    assert ATTRIBUTE_GETTER.get(Meta(), "causation_id") is None
    assert ATTRIBUTE_GETTER.get(Meta(), "missing") is None


def test_mappings_any_case_and_json_values() -> None:
    carrier: dict[str, Any] = {"Traceparent": "a", "deadline": 1764000000000, "list": ["x", 3]}
    assert MAPPING_GETTER.get(carrier, "traceparent") == ["a"]
    assert MAPPING_GETTER.get(carrier, "deadline") == ["1764000000000"]
    assert MAPPING_GETTER.get(carrier, "list") == ["x", "3"]
    assert MAPPING_GETTER.get({"flag": True, "obj": {}}, "flag") is None
    assert MAPPING_GETTER.get({"obj": {}}, "obj") is None
    MAPPING_SETTER.set(carrier, "tracestate", "k=v")
    assert carrier["tracestate"] == "k=v"


def test_broker_headers_by_exact_name_only() -> None:
    carrier = {"traceparent": "a", "Baggage": "b", "deadline": 17}
    assert EXACT_MAPPING_GETTER.get(carrier, "traceparent") == ["a"]
    assert EXACT_MAPPING_GETTER.get(carrier, "deadline") == ["17"]
    assert EXACT_MAPPING_GETTER.get(carrier, "baggage") is None
    assert MAPPING_GETTER.get(carrier, "baggage") == ["b"]
