from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from clicktrace.ingest._otlp import (
    MAX_ARRAY_LENGTH,
    MAX_ATTRIBUTE_VALUE_LENGTH,
    parse_attributes,
)


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


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_arbitrary_json_never_raises(value: Any) -> None:
    parse_attributes(value)
    parse_attributes([kv("k", value)])
