"""Signed client tokens, and ``POST /clicktrace/session`` that hands them out: the only way a
browser tab proves which client id it is.

A token is ``v1.<payload>.<signature>``, both parts unpadded base64url. The payload is JSON
``{"c": client_id, "x": expires_at_ms, "u": user?}``; the signature is HMAC-SHA256 over
``v1.<payload>`` with the configured secret. ``verify`` never raises: anything tampered,
expired, oversized or malformed is ``None``.

Both parts must be in canonical form (what :func:`_b64` writes): a lenient decoder would also
accept padding, foreign characters and the unused low bits of the last character, so one
token would have many spellings that verify, and a spelling is what caches and logs key on.

The session route: a request that presents a still-valid token in ``x-clicktrace-client``
gets a fresh token for the same client id (so its ``seq`` continues); anything else gets a new
client id. When the app gives a ``user_of`` hook, the token is bound to the authenticated user
it returns. Minting is limited per peer address (``rate``; 429 past it): every per-client
limit elsewhere (span ingest, sockets per client) is only as strong as sessions are scarce.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import inspect
import json
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clicktrace.ids import new_id, parse_id
from clicktrace.protocol import (
    CLIENT_HEADER,
    INVALID_BODY,
    MAX_CLIENT_TOKEN_LENGTH,
    RATE_LIMITED,
    SESSION_PATH,
)
from clicktrace.web._body import parse_json, read_body
from clicktrace.web._errors import Refusal, refuse, request_correlation_id
from clicktrace.web._limits import PeerOf, RateLimit, RateLimiter, peer_address

MAX_USER_LENGTH = 128
_PREFIX = "v1."
_MIN_SECRET_BYTES = 16


@dataclass(frozen=True, slots=True)
class Claims:
    """What a valid token says: the client id, its expiry (Unix ms) and the bound user."""

    client_id: str
    expires_at: int
    user: str | None = None


@dataclass(frozen=True, slots=True)
class Session:
    """The answer to ``POST /clicktrace/session``."""

    client_id: str
    token: str
    expires_at: int

    def as_json(self) -> dict[str, str | int]:
        return {"client_id": self.client_id, "token": self.token, "expires_at": self.expires_at}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes | None:
    """The bytes ``text`` spells in canonical unpadded base64url, else ``None``."""
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return data if _b64(data) == text else None


class TokenSigner:
    """Issues and verifies client tokens.

    ``secret=None`` makes a random secret at start: fine for one process, but every node of a
    cluster (and every worker that verifies) must share a configured secret.
    """

    def __init__(
        self,
        secret: str | bytes | None = None,
        ttl_seconds: float = 86400,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if secret is None:
            key = secrets.token_bytes(32)
        elif isinstance(secret, str | bytes):
            key = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
        else:
            raise TypeError("secret must be str, bytes or None")
        if len(key) < _MIN_SECRET_BYTES:
            raise ValueError(f"secret must be at least {_MIN_SECRET_BYTES} bytes")
        if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int | float):
            raise TypeError("ttl_seconds must be a number")
        if not ttl_seconds > 0:
            raise ValueError("ttl_seconds must be positive")
        self._key = key
        self._ttl_ms = int(ttl_seconds * 1000)
        self._clock = clock

    @classmethod
    def from_env(
        cls,
        name: str = "CLICKTRACE_SECRET",
        ttl_seconds: float = 86400,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> TokenSigner:
        """The secret from environment variable ``name``; unset or empty means a random one
        (one process only). A set but too short secret raises ``ValueError``."""
        secret = (os.environ if environ is None else environ).get(name) or None
        return cls(secret, ttl_seconds)

    @property
    def ttl_seconds(self) -> float:
        return self._ttl_ms / 1000

    def _sign(self, message: bytes) -> bytes:
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def issue(self, client_id: str | None = None, *, user: str | None = None) -> Session:
        """A token for ``client_id`` (a fresh ULID when ``None``), bound to ``user`` if given."""
        cid = new_id() if client_id is None else parse_id(client_id)
        if cid is None:
            raise ValueError("client_id must be a ULID")
        if user is not None and (not isinstance(user, str) or len(user) > MAX_USER_LENGTH):
            raise ValueError(f"user must be a string of at most {MAX_USER_LENGTH} characters")
        expires_at = int(self._clock() * 1000) + self._ttl_ms
        claims: dict[str, str | int] = {"c": cid, "x": expires_at}
        if user is not None:
            claims["u"] = user
        payload = json.dumps(claims, separators=(",", ":"), ensure_ascii=False)
        body = _PREFIX + _b64(payload.encode("utf-8"))
        token = body + "." + _b64(self._sign(body.encode("ascii")))
        if len(token) > MAX_CLIENT_TOKEN_LENGTH:  # only a user full of control characters
            raise ValueError(f"user makes the token longer than {MAX_CLIENT_TOKEN_LENGTH}")
        return Session(client_id=cid, token=token, expires_at=expires_at)

    def claims(self, token: object) -> Claims | None:
        """The claims of a valid, unexpired token, or ``None``. Never raises."""
        if (
            not isinstance(token, str)
            or len(token) > MAX_CLIENT_TOKEN_LENGTH
            or not token.isascii()
        ):
            return None
        if not token.startswith(_PREFIX) or token.count(".") != 2:
            return None
        body, _, sig_text = token.rpartition(".")
        sig = _unb64(sig_text)
        if sig is None or not hmac.compare_digest(sig, self._sign(body.encode("ascii"))):
            return None
        raw = _unb64(body[len(_PREFIX) :])
        try:
            data = json.loads(raw) if raw is not None else None
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        raw_cid, exp, user = data.get("c"), data.get("x"), data.get("u")
        cid = parse_id(raw_cid) if isinstance(raw_cid, str) else None
        if cid is None or isinstance(exp, bool) or not isinstance(exp, int):
            return None
        if user is not None and not isinstance(user, str):
            return None
        if exp <= int(self._clock() * 1000):
            return None
        return Claims(client_id=cid, expires_at=exp, user=user)

    def verify(self, token: object) -> str | None:
        """The client id named by a valid, unexpired token, or ``None``. Never raises."""
        claims = self.claims(token)
        return None if claims is None else claims.client_id


# The session route.

MAX_SESSION_BODY = 1024
# Per peer address: a tab mints one at load and renews daily; a NAT holds many tabs.
DEFAULT_SESSION_RATE = RateLimit(per_second=1.0, burst=30)
UserOf = Callable[[HTTPConnection], Awaitable[str | None] | str | None]
_NO_STORE = {"cache-control": "no-store"}
_LIMITED = Refusal(429, RATE_LIMITED, "too many sessions from this address")
_BAD_BODY = Refusal(400, INVALID_BODY, "expected no body or a small JSON object")


async def resolve_user(user_of: UserOf | None, conn: HTTPConnection) -> str | None:
    """The app's authenticated user for ``conn`` (``None``: anonymous)."""
    if user_of is None:
        return None
    user = user_of(conn)
    if inspect.isawaitable(user):
        user = await user
    if user is not None and (not isinstance(user, str) or len(user) > MAX_USER_LENGTH):
        raise TypeError(f"user_of must return None or a str of at most {MAX_USER_LENGTH} chars")
    return user


async def _body_ok(request: Request) -> bool:
    body = await read_body(request, MAX_SESSION_BODY)  # a client that left: nobody is told
    if isinstance(body, Refusal):
        return False
    raw = body.strip()
    return not raw or isinstance(parse_json(raw), dict)


def session_route(
    signer: TokenSigner,
    *,
    user_of: UserOf | None = None,
    path: str = SESSION_PATH,
    rate: RateLimit | None = DEFAULT_SESSION_RATE,
    peer_of: PeerOf = peer_address,
) -> Route:
    """The route; ``rate`` is per ``peer_of(scope)`` (``None``: unlimited)."""
    limiter = RateLimiter(rate) if rate is not None else None

    async def session(request: Request) -> Response:
        if limiter is not None and not limiter.allow(peer_of(request.scope)):
            return refuse(
                _LIMITED, request_correlation_id(request.scope), {**_NO_STORE, "retry-after": "1"}
            )
        if not await _body_ok(request):
            return refuse(_BAD_BODY, request_correlation_id(request.scope), _NO_STORE)
        user = await resolve_user(user_of, request)
        claims = signer.claims(request.headers.get(CLIENT_HEADER))
        keep = claims is not None and (claims.user is None or claims.user == user)
        issued = signer.issue(claims.client_id if keep and claims else None, user=user)
        return JSONResponse(issued.as_json(), headers=_NO_STORE)

    return Route(path, session, methods=["POST"], name="clicktrace_session")
