"""HTTP request headers in one pass: the edge's fast path into :func:`extract`.

``extract(scope["headers"], ASGI_GETTER, HEADER_KEYS)`` scans the header list once per field;
:func:`extract_asgi` scans it once in all, keeps only the fields clicktrace reads, and hands
them to the same :func:`extract`, so both give the same result.
"""

from __future__ import annotations

from collections.abc import Iterable

from clicktrace.propagation.core import HEADER_KEYS, Extracted, extract

__all__ = ["CLIENT_HEADER", "MAX_CLIENT_TOKEN_LENGTH", "extract_asgi"]

CLIENT_HEADER = "x-clicktrace-client"
MAX_CLIENT_TOKEN_LENGTH = 1024  # a signed token is ~100 bytes; longer is not ours

_NAMES: dict[bytes, str] = {
    name.encode("latin-1"): name
    for name in (
        HEADER_KEYS.traceparent,
        HEADER_KEYS.tracestate,
        HEADER_KEYS.baggage,
        HEADER_KEYS.correlation_id,
        HEADER_KEYS.causation_id,
        HEADER_KEYS.deadline,
        CLIENT_HEADER,
    )
}


class _ExactGetter:
    """Getter for the dict :func:`extract_asgi` builds: names are already lowercase."""

    def get(self, carrier: dict[str, list[str]], key: str) -> list[str] | None:
        return carrier.get(key)


_EXACT = _ExactGetter()


def extract_asgi(headers: Iterable[tuple[bytes, bytes]]) -> tuple[Extracted, str | None]:
    """The :class:`Extracted` of ASGI ``headers`` and the raw client token, if exactly one
    of a sane length was sent. Never raises."""
    found: dict[str, list[str]] = {}
    names = _NAMES
    for name, value in headers:
        key = names.get(name)
        if key is not None:
            text = value.decode("latin-1")
            values = found.get(key)
            if values is None:
                found[key] = [text]
            else:
                values.append(text)
    if not found:
        return _EMPTY, None
    tokens = found.get(CLIENT_HEADER)
    token = None
    if tokens is not None and len(tokens) == 1 and 0 < len(tokens[0]) <= MAX_CLIENT_TOKEN_LENGTH:
        token = tokens[0]
    return extract(found, _EXACT, HEADER_KEYS), token


_EMPTY = Extracted()
