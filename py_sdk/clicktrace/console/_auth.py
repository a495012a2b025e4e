"""Who may open the console: the operator token, entered once on a sign-in page (a plain form,
no script), answered with a session cookie, and the pages a browser is shown around it.

The cookie holds no token: it is ``<expiry>.<nonce>.<mac>``, the MAC keyed by a key derived
from the token (so every node that knows the token accepts it, and changing the token signs
everyone out). ``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no other site's
request carries it), ``Path`` the console's prefix, ``Secure`` over https. Signing in is
rate-limited per peer *before* the token is compared: a guess that is right is refused as
well once the peer is over its budget, so the limit bounds guessing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import secrets
import time
from collections.abc import Callable

__all__ = [
    "COOKIE",
    "CSRF_HEADER",
    "MAX_TOKEN_LENGTH",
    "PAGE_CSP",
    "SESSION_SECONDS",
    "SIGN_IN_CSP",
    "Sessions",
    "sign_in_page",
]

COOKIE = "clicktrace_console"
CSRF_HEADER = "x-clicktrace-console"
SESSION_SECONDS = 12 * 3600
MAX_TOKEN_LENGTH = 1024
MAX_COOKIE_LENGTH = 200
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SIGN_IN_CSP = "default-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
_CONTEXT = b"clicktrace console session v1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class Sessions:
    """Makes and checks console cookies for one operator token."""

    def __init__(
        self,
        token: str,
        *,
        seconds: int = SESSION_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(token, str) or not token:
            raise ValueError("the console needs an operator token")
        self._token = token.encode()
        self._key = hmac.new(self._token, _CONTEXT, hashlib.sha256).digest()
        self.seconds = seconds
        self._clock = clock

    def right_token(self, given: str) -> bool:
        """Whether ``given`` is the operator token (constant time)."""
        if not isinstance(given, str) or len(given) > MAX_TOKEN_LENGTH:
            return False
        return hmac.compare_digest(given.encode(), self._token)

    def _mac(self, text: str) -> str:
        return _b64(hmac.new(self._key, text.encode(), hashlib.sha256).digest())

    def cookie(self) -> str:
        """A fresh cookie value, good for ``seconds``."""
        text = f"{int(self._clock()) + self.seconds}.{_b64(secrets.token_bytes(12))}"
        return f"{text}.{self._mac(text)}"

    def valid(self, value: str | None) -> bool:
        """Whether ``value`` is a cookie this token signed and that has not expired. Never
        raises."""
        if not value or len(value) > MAX_COOKIE_LENGTH:
            return False
        text, _, mac = value.rpartition(".")
        expiry, _, _nonce = text.partition(".")
        if not expiry.isdigit() or not hmac.compare_digest(mac.encode(), self._mac(text).encode()):
            return False
        return int(expiry) > self._clock()


def sign_in_page(action: str, error: str | None = None) -> str:
    """The sign-in page: a form posting the token to ``action``, no script, nothing about the
    app. ``error`` is one of the page's own lines (never the caller's input)."""
    line = f'<p role="alert">{html.escape(error)}</p>' if error else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        "<title>clicktrace console: sign in</title></head><body><main>"
        "<h1>clicktrace console</h1>"
        f'<form method="post" action="{html.escape(action)}">'
        '<label for="token">Operator token</label> '
        '<input id="token" name="token" type="password" autocomplete="current-password" '
        'required autofocus> <button type="submit">Sign in</button></form>'
        f"{line}</main></body></html>"
    )
