"""One encoder and one decoder for entries in the stores that keep bytes."""

from __future__ import annotations

import msgspec

from clicktrace.journal.entry import Entry

__all__ = ["decode", "decode_many", "encode"]

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Entry)
encode = _encoder.encode


def decode(data: bytes) -> Entry | None:
    """The entry in ``data``, or None when it does not decode (a foreign or damaged row)."""
    try:
        return _decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def decode_many(rows: list[bytes]) -> list[Entry]:
    return [e for e in map(decode, rows) if e is not None]
