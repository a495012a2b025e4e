"""The bus message envelope (protocol v1): metadata that carries the click's context, and a
payload. Frozen msgspec Structs; new fields always get defaults and unknown fields are
ignored, so old readers accept new writers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from clicktrace import context as click_context
from clicktrace.ids import new_id
from clicktrace.propagation import ATTRIBUTE_GETTER, METADATA_KEYS, Extracted, extract, inject

__all__ = ["Envelope", "Metadata", "decode", "encode", "new_envelope"]


class Metadata(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    message_id: str
    correlation_id: str
    type: str
    occurred_at: datetime
    causation_id: str | None = None
    traceparent: str | None = None
    tracestate: str | None = None
    baggage: str | None = None
    client_id: str | None = None
    deadline: int | None = None
    """Unix time in milliseconds after which the command's effect is no longer wanted."""

    def extract(self) -> Extracted:
        """The trace context and clicktrace ids this message carries."""
        return extract(self, ATTRIBUTE_GETTER, METADATA_KEYS)


class Envelope(msgspec.Struct, frozen=True, kw_only=True):
    metadata: Metadata
    payload: Any


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Envelope)


def encode(envelope: Envelope) -> bytes:
    return _encoder.encode(envelope)


def decode(data: bytes | str) -> Envelope:
    """Raises ``msgspec.ValidationError``/``DecodeError`` on malformed data."""
    return _decoder.decode(data)


def new_envelope(
    type: str,
    payload: Any,
    *,
    click: click_context.ClickContext | None = None,
    message_id: str | None = None,
) -> Envelope:
    """An envelope for ``payload`` inside the current trace and click context.

    The message inherits the correlation id, causation id, client and deadline of the
    current :class:`ClickContext`; without one it starts a new correlation.
    """
    click = click or click_context.current()
    fields: dict[str, Any] = {}
    inject(fields, keys=METADATA_KEYS, click=click)
    fields.setdefault("correlation_id", new_id())
    if "deadline" in fields:
        fields["deadline"] = int(fields["deadline"])  # a number in JSON metadata
    return Envelope(
        metadata=Metadata(
            message_id=message_id or new_id(),
            type=type,
            occurred_at=datetime.now(UTC),
            **fields,
        ),
        payload=payload,
    )
