from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clicktrace.ids import new_id
from clicktrace.notify._frames import (
    MAX_HELLO_BYTES,
    MAX_SEQ,
    Confirmed,
    Error,
    Hello,
    Rejected,
    Resync,
    as_json,
    build_frame,
    decode,
    encode,
    from_json,
    parse_hello,
    parse_hello_text,
)


def test_hello() -> None:
    assert parse_hello({"token": "t", "last_seq": 7}) == Hello("t", 7)
    assert parse_hello({"token": "t"}) == Hello("t", 0)
    assert parse_hello({"token": "t", "last_seq": None}) == Hello("t", 0)
    assert parse_hello_text('{"token": "t", "last_seq": 3}') == Hello("t", 3)
    assert parse_hello({"token": "t", "last_seq": 2, "epoch": "01JEPOCH"}) == Hello(
        "t", 2, "01JEPOCH"
    )
    assert parse_hello({"token": "t", "epoch": None}) == Hello("t", 0)  # an older client


@pytest.mark.parametrize(
    "data",
    [
        None,
        "t",
        [],
        {},
        {"token": ""},
        {"token": 5},
        {"token": "t", "last_seq": -1},
        {"token": "t", "last_seq": True},
        {"token": "t", "last_seq": "3"},
        {"token": "t", "last_seq": 1.5},
        {"token": "t", "last_seq": MAX_SEQ + 1},
        {"token": "t" * 10_000},
        {"token": "t", "epoch": 5},
        {"token": "t", "epoch": ""},
        {"token": "t", "epoch": "e" * 65},
        {"token": "t", "epoch": "é"},
        {"token": "t", "epoch": "a\nb"},
    ],
)
def test_bad_hello(data: object) -> None:
    assert parse_hello(data) is None


def test_bad_hello_text() -> None:
    assert parse_hello_text(None) is None
    assert parse_hello_text("{") is None
    assert parse_hello_text("[" * 100_000) is None
    assert parse_hello_text(json.dumps({"token": "t", "pad": "x" * MAX_HELLO_BYTES})) is None


@given(st.text(max_size=300))
def test_parse_hello_text_never_raises(text: str) -> None:
    hello = parse_hello_text(text)
    assert hello is None or isinstance(hello.token, str)


def test_build_frame() -> None:
    corr = new_id()
    confirmed = build_frame(
        correlation_id=corr.lower(), status="confirmed", type="T", data={"id": 1}
    )
    assert confirmed == Confirmed(correlation_id=corr, type="T", data={"id": 1})
    assert as_json(confirmed) == {
        "correlation_id": corr,
        "status": "confirmed",
        "type": "T",
        "data": {"id": 1},
    }
    rejected = build_frame(
        correlation_id=corr, status="rejected", error={"code": "name_taken", "message": "taken"}
    )
    assert isinstance(rejected, Rejected)
    assert rejected.error == Error(code="name_taken", message="taken")
    assert as_json(rejected)["error"] == {"code": "name_taken", "message": "taken"}
    assert as_json(Resync(seq=4)) == {"status": "resync", "seq": 4}
    assert as_json(Resync(seq=4, epoch="01JEPOCH")) == {
        "status": "resync",
        "seq": 4,
        "epoch": "01JEPOCH",
    }


def test_the_wire_format_is_what_the_browser_reads() -> None:
    # js_sdk/src/notification.ts: seq at 0 still present, absent fields omitted, never null.
    corr = new_id()
    assert json.loads(encode(Resync(seq=0))) == {"status": "resync", "seq": 0}
    frame = Confirmed(correlation_id=corr, seq=1, epoch="E", traceparent="00-x")
    assert json.loads(encode(frame)) == {
        "status": "confirmed",
        "correlation_id": corr,
        "seq": 1,
        "epoch": "E",
        "traceparent": "00-x",
    }
    assert decode(encode(frame)) == frame == from_json(as_json(frame))
    assert as_json(build_frame(correlation_id=corr, status="progress", data=0))["data"] == 0


@pytest.mark.parametrize(
    "data",
    [b"", b"[", b"{}", b'{"status":"resync","seq":1}', b'{"status":"nope","correlation_id":"x"}'],
)
def test_a_notification_that_does_not_decode_is_none(data: bytes) -> None:
    assert decode(data) is None


def test_a_frame_from_another_node_needs_its_seq() -> None:
    corr = new_id()
    assert from_json({"status": "confirmed", "correlation_id": corr}) is None
    assert from_json({"status": "confirmed", "correlation_id": corr, "seq": "1"}) is None
    assert from_json([]) is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"correlation_id": "nope", "status": "confirmed"},
        {"correlation_id": new_id(), "status": "resync"},
        {"correlation_id": new_id(), "status": "rejected"},
        {"correlation_id": new_id(), "status": "confirmed", "type": ""},
        {"correlation_id": new_id(), "status": "rejected", "error": {"message": "x"}},
    ],
)
def test_build_frame_refuses_mistakes(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        build_frame(**kwargs)  # type: ignore[arg-type]


def test_build_frame_error_must_be_a_dict() -> None:
    with pytest.raises(TypeError):
        build_frame(correlation_id=new_id(), status="rejected", error="boom")  # type: ignore[arg-type]
