"""Request bodies and path integers from untrusted clients, read so that no input is a 500.

``json.loads`` on a raw body has four ways to fail late or loudly: the body is read whole
before any cap is checked (a declared gigabyte is waited on), nesting of ~1,000 raises
``RecursionError``, ``\\ud800`` escapes yield strings that cannot be encoded again, and
``int()`` on a path segment accepts ``+1``, `` 1`` and non-ASCII digits with no upper bound.
Here (the one reader every route uses: commands, the session route, span ingest, the Engine.IO
guard) the declared length is checked first, the stream is cut at the cap, depth is measured
before parsing, and every string is checked after. Nothing raises: the caller gets the value
or a :class:`Refusal` it turns into the protocol's error response.

A client that goes away mid-body (a closed tab, a dropped connection) makes Starlette raise
``ClientDisconnect``, which the server logs as a ~3 KB traceback per request: here it is one
INFO line and a ``499`` refusal nobody receives (the status is for the journal and metrics).
"""

from __future__ import annotations

import json
import logging
import re
from typing import TypeAlias

from starlette.requests import ClientDisconnect, Request

from clicktrace.protocol import CLIENT_CLOSED_REQUEST, INVALID_BODY, PAYLOAD_TOO_LARGE
from clicktrace.web._errors import Refusal

__all__ = [
    "CLIENT_CLOSED",
    "MAX_BODY_BYTES",
    "MAX_INTEGER",
    "MAX_JSON_DEPTH",
    "MAX_PATH_INT",
    "Json",
    "parse_json",
    "path_int",
    "read_body",
    "read_json",
    "read_json_object",
]

MAX_BODY_BYTES = 16 * 1024
MAX_JSON_DEPTH = 32
MAX_PATH_INT = 2**63 - 1  # what a SQL BIGINT (and SQLite's INTEGER) holds
MAX_INTEGER = 2**31 - 1  # what a SQL INTEGER (PostgreSQL int4, MySQL INT) holds

Json: TypeAlias = dict[str, "Json"] | list["Json"] | str | int | float | bool | None

_LENGTH = re.compile(rb"[0-9]{1,19}")
_PATH_INT = re.compile(r"[0-9]{1,19}")  # a str pattern: [0-9] is ASCII only
# JSON strings (escapes included) are cut out before brackets are counted. An unterminated
# one runs to the end (the closing quote is optional), so the scan never backtracks: linear.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"?', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# nginx's "client closed request": the response goes nowhere, the status names what happened.
CLIENT_CLOSED = Refusal(499, CLIENT_CLOSED_REQUEST, "The client left before its body arrived.")
_log = logging.getLogger("clicktrace.asgi")


def _too_large(limit: int) -> Refusal:
    return Refusal(413, PAYLOAD_TOO_LARGE, f"The body must be at most {limit} bytes.")


def _invalid(message: str) -> Refusal:
    return Refusal(400, INVALID_BODY, message)


async def read_body(request: Request, max_bytes: int = MAX_BODY_BYTES) -> bytes | Refusal:
    """The body, or a 413 refusal as soon as it is known to exceed ``max_bytes``: from a
    declared ``content-length`` before reading anything, else when the stream passes it;
    :data:`CLIENT_CLOSED` when the client disconnects before the body ends."""
    if max_bytes < 0:
        raise ValueError("max_bytes must be >= 0")
    declared = request.headers.getlist("content-length")
    if declared:
        if len(declared) > 1 or _LENGTH.fullmatch(declared[0].encode("latin-1")) is None:
            return _invalid("content-length must be one decimal number.")
        if int(declared[0]) > max_bytes:
            return _too_large(max_bytes)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:  # stop reading: the rest is never buffered
                return _too_large(max_bytes)
            chunks.append(chunk)
    except ClientDisconnect:
        _log.info("client left after %d bytes of the request body", size)
        return CLIENT_CLOSED
    return b"".join(chunks)


def json_depth(data: bytes) -> int:
    """The deepest nesting of arrays and objects in ``data`` (exact for valid JSON)."""
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    depth = deepest = 0
    for byte in brackets:
        if byte in b"[{":
            depth += 1
            if depth > deepest:
                deepest = depth
        else:
            depth -= 1
    return deepest


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _encodable(value: Json) -> bool:
    """No lone surrogates anywhere (keys included): every string encodes as UTF-8."""
    if isinstance(value, str):
        return value.isascii() or _utf8(value)
    if isinstance(value, list):
        return all(_encodable(item) for item in value)
    if isinstance(value, dict):
        return all(_encodable(key) and _encodable(item) for key, item in value.items())
    return True


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_json(data: bytes, max_depth: int = MAX_JSON_DEPTH) -> Json | Refusal:
    """``data`` as JSON (RFC 8259: UTF-8, no ``NaN``/``Infinity``, nested at most
    ``max_depth`` deep, no lone surrogates), or a 400 refusal."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return _invalid("The body must be UTF-8.")
    if json_depth(data) > max_depth:
        return _invalid(f"The body is nested more than {max_depth} deep.")
    try:
        value: Json = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError):  # RecursionError: a depth the count missed
        return _invalid("The body must be JSON.")
    if not _encodable(value):
        return _invalid("The body has a string that is not valid Unicode.")
    return value


async def read_json(
    request: Request, *, max_bytes: int = MAX_BODY_BYTES, max_depth: int = MAX_JSON_DEPTH
) -> Json | Refusal:
    """:func:`read_body` then :func:`parse_json`."""
    body = await read_body(request, max_bytes)
    return body if isinstance(body, Refusal) else parse_json(body, max_depth)


async def read_json_object(
    request: Request, *, max_bytes: int = MAX_BODY_BYTES, max_depth: int = MAX_JSON_DEPTH
) -> dict[str, Json] | Refusal:
    """:func:`read_json`, refusing anything but a JSON object (what a command body is)."""
    value = await read_json(request, max_bytes=max_bytes, max_depth=max_depth)
    if isinstance(value, Refusal | dict):
        return value
    return _invalid("The body must be a JSON object.")


def path_int(text: str, maximum: int) -> int | None:
    """``text`` as a non-negative integer of ASCII digits only, at most ``maximum``; ``None``
    for anything else (signs, spaces, non-ASCII digits, overflow). Never raises on ``text``.

    ``maximum`` is the bound of the column the id is looked up in (:data:`MAX_INTEGER`,
    :data:`MAX_PATH_INT` for a ``BIGINT``): an id past it names nothing (a 404), where the
    database would refuse the comparison (PostgreSQL: a 500). It has no default, since the
    old one (a ``BIGINT``'s) let ids from 2^31 reach an ``INTEGER`` column."""
    if (
        isinstance(maximum, bool)
        or not isinstance(maximum, int)
        or not 0 <= maximum <= MAX_PATH_INT
    ):
        raise ValueError(f"maximum must be an int from 0 to {MAX_PATH_INT}")
    if not isinstance(text, str) or _PATH_INT.fullmatch(text) is None:
        return None
    value = int(text)
    return value if value <= maximum else None
