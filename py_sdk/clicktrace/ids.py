"""ULID identifiers: minted with ulid-py, parsed without ever trusting the input."""

from __future__ import annotations

import re

import ulid

__all__ = ["escape_for_log", "new_id", "parse_id"]

ULID_LENGTH = 26
# Crockford base32 in either case, spelled out: re.IGNORECASE would also let through
# Unicode look-alikes such as the Kelvin sign. The first character carries only 3 bits:
# anything above 7 overflows 128 bits.
_PATTERN = r"[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}"
_STR = re.compile(_PATTERN)
_ALPHABET = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# RFC 9110 optional whitespace around a header value (httptools passes it on).
_OWS = " \t"
_OWS_BYTES = b" \t"


def new_id() -> str:
    """A fresh ULID in canonical form (26 characters, uppercase Crockford base32)."""
    return str(ulid.new())


def parse_id(value: str | bytes | None) -> str | None:
    """The canonical (uppercase) ULID in ``value``, or ``None`` if it is not one.

    Accepts any letter case and ignores spaces and tabs around it (a header's optional
    whitespace). Never raises: untrusted input yields ``None`` and the caller decides whether
    to replace it or refuse the request.
    """
    if isinstance(value, str):
        if len(value) != ULID_LENGTH:
            value = value.strip(_OWS)
        if len(value) == ULID_LENGTH and _STR.fullmatch(value) is not None:
            return value.upper()
        return None
    if isinstance(value, bytes):
        if len(value) != ULID_LENGTH:  # only then strip: the usual id skips it
            value = value.strip(_OWS_BYTES)
            if len(value) != ULID_LENGTH:
                return None
        # bytes.upper() changes ASCII letters only, so any other byte survives to be refused
        # by the translate, which deletes the alphabet and must leave nothing (a third
        # faster than the pattern: this runs on every request).
        upper = value.upper()
        if upper[0] < 0x38 and not upper.translate(None, _ALPHABET):
            return upper.decode("ascii")
    return None


MAX_LOGGED_LENGTH = 64


def escape_for_log(value: str | bytes, limit: int = MAX_LOGGED_LENGTH) -> str:
    """``value`` safe for a log line: truncated to ``limit`` characters, then every
    non-printable or non-ASCII character escaped, so hostile input cannot forge log lines."""
    if limit < 0:
        raise ValueError("limit must be >= 0")
    cut = value[:limit]
    text = ascii(cut)  # quotes and escapes: CR/LF, ANSI escapes and the like become visible
    return text + "…" if len(value) > limit else text
