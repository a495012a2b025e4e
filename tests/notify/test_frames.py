from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clicktrace.ids import new_id
from clicktrace.notify.frames import (
    MAX_HELLO_BYTES,
    MAX_SEQ,
    Hello,
    build_frame,
    parse_hello,
    parse_hello_text,
    resync_frame,
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
    assert build_frame(
        correlation_id=corr.lower(), status="confirmed", type="T", data={"id": 1}
    ) == {"correlation_id": corr, "status": "confirmed", "type": "T", "data": {"id": 1}}
    rejected = build_frame(
        correlation_id=corr, status="rejected", error={"code": "name_taken", "message": "taken"}
    )
    assert rejected["error"] == {"code": "name_taken", "message": "taken"}
    assert resync_frame(4) == {"status": "resync", "seq": 4}
    assert resync_frame(4, "01JEPOCH") == {"status": "resync", "seq": 4, "epoch": "01JEPOCH"}


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
