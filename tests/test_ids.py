"""ULIDs: minting, parsing untrusted input, and logging it safely."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clicktrace.ids import ULID_LENGTH, escape_for_log, new_id, parse_id

PARSERS = settings.get_profile("clicktrace-parsers")
ROUND_TRIPS = settings.get_profile("clicktrace-round-trips")

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def encode(value: int) -> str:
    return "".join(CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def test_new_ids_are_canonical_unique_and_time_ordered() -> None:
    ids = [new_id() for _ in range(50)]
    assert all(parse_id(i) == i for i in ids)
    assert len(set(ids)) == len(ids)
    assert [i[:10] for i in ids] == sorted(i[:10] for i in ids)


def test_any_case_is_normalised() -> None:
    assert parse_id("01jd8x3q7e8w5v4t2n9r6m0k1a") == "01JD8X3Q7E8W5V4T2N9R6M0K1A"
    assert parse_id(b"01jd8x3q7e8w5v4t2n9r6m0k1a") == "01JD8X3Q7E8W5V4T2N9R6M0K1A"


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "01JD8X3Q7E8W5V4T2N9R6M0K1",  # 25 characters
        "01JD8X3Q7E8W5V4T2N9R6M0K1AA",
        "81JD8X3Q7E8W5V4T2N9R6M0K1A",  # overflows 128 bits
        "01JD8X3Q7E8W5V4T2N9R6M0K1I",  # I, L, O, U are not Crockford
        "01JD8X3Q7E8W5V4T2N9R6M0K1U",
        "01JD8X3Q7E8W5V4T2N9R6M0K1\u212a",  # Kelvin sign, a look-alike of K
        " 1JD8X3Q7E8W5V4T2N9R6M0K1A",
        12345,
        ["01JD8X3Q7E8W5V4T2N9R6M0K1A"],
        b"01JD8X3Q7E8W5V4T2N9R6M0K1\xff",
    ],
)
def test_invalid(value: object) -> None:
    assert parse_id(value) is None  # type: ignore[arg-type]


def test_escape_for_log() -> None:
    assert escape_for_log("ok") == "'ok'"
    hostile = "x\r\nINFO forged line\x1b[31m"
    escaped = escape_for_log(hostile)
    assert "\n" not in escaped and "\r" not in escaped and "\x1b" not in escaped
    assert escape_for_log("a" * 100, limit=8) == "'aaaaaaaa'…"
    assert escape_for_log("é") == "'\\xe9'"
    with pytest.raises(ValueError):
        escape_for_log("x", limit=-1)


@ROUND_TRIPS
@given(st.integers(0, 2**128 - 1), st.booleans())
def test_round_trip(value: int, lower: bool) -> None:
    text = encode(value)
    assert len(text) == ULID_LENGTH
    assert parse_id(text.lower() if lower else text) == text


@PARSERS
@given(
    st.one_of(st.text(), st.binary(), st.text(CROCKFORD + "ilouILOU8z", min_size=26, max_size=26))
)
def test_arbitrary_input_never_raises(value: str | bytes) -> None:
    parsed = parse_id(value)
    if parsed is not None:
        assert len(parsed) == ULID_LENGTH and parsed == parsed.upper()
        assert set(parsed) <= set(CROCKFORD) and parsed[0] <= "7"
    assert "\n" not in escape_for_log(value)
