"""The answers kept with a claim: an Outcome is bounded and never a crash to read back when
what is stored is not readable; an Answer round-trips any body."""

from __future__ import annotations

import pytest

from clicktrace.claims import Answer, Outcome
from clicktrace.claims._base import (
    MAX_OUTCOME_BYTES,
    decode_answer,
    decode_outcome,
    encode_answer,
    encode_outcome,
)


def test_an_outcome_too_big_to_keep_is_kept_without_its_data() -> None:
    big = Outcome.rejected("too_long", "x" * 1000, data={"blob": "y" * MAX_OUTCOME_BYTES})
    raw = encode_outcome(big)
    assert len(raw) <= MAX_OUTCOME_BYTES
    assert decode_outcome(raw) == Outcome(
        "rejected", None, {"code": "too_long", "message": "x" * 200}
    )


def test_data_that_is_not_json_is_refused_loudly() -> None:
    with pytest.raises(TypeError):
        encode_outcome(Outcome.confirmed({"when": object()}))
    with pytest.raises(ValueError):
        encode_outcome(Outcome("progress"))


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "1",
        b"1",
        "[]",
        "{",
        '{"status": "maybe"}',
        '{"status": "rejected"}',
        '{"status": "rejected", "error": {"code": 7}}',
        '{"status": "confirmed", "error": "no"}',
        b"\xff\xfe",
        "[" * 5000,
        "x" * (MAX_OUTCOME_BYTES + 1),
    ],
)
def test_a_stored_value_that_is_not_an_outcome_reads_as_none(raw: str | bytes | None) -> None:
    assert decode_outcome(raw) is None


def test_an_answer_round_trips_any_body() -> None:
    answer = Answer(409, bytes(range(256)), "application/octet-stream")
    assert decode_answer(encode_answer(answer)) == answer
    assert decode_answer(encode_answer(Answer(202, b"{}"))) == Answer(202, b"{}")


@pytest.mark.parametrize("raw", [b"", b"=", b"{}", b"[202]", b'[202, "not base64!", "x"]'])
def test_a_stored_value_that_is_not_an_answer_reads_as_none(raw: bytes) -> None:
    assert decode_answer(raw) is None
