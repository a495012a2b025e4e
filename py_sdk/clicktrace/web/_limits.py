"""Who may ask, and how often: the peer address a request comes from, token buckets keyed on
it (or on a verified client), and the operator's bearer token.

**Peer address.** By default it is the ASGI scope's ``client`` host. Behind a reverse proxy
that is the proxy for every request, so all browsers would share one bucket: either let the
server rewrite ``scope["client"]`` (uvicorn ``--proxy-headers --forwarded-allow-ips=<proxy>``),
or build a :func:`forwarded_peer` with the proxies you trust. ``x-forwarded-for`` is never
trusted from an address not in that set: anyone can send it.

**Rate limits.** A token bucket per key (client id, peer address), bounded in memory. The
routes that face the browser (session, span ingest) key one limiter on the verified client
and another on the peer address: sessions are free to mint, so a per-client limit alone is
multiplied by every session a sender mints; the per-peer one is not.

**Operator token.** One bearer token per deployment (the ``operator_token`` setting or the
``CLICKTRACE_OPERATOR_TOKEN`` environment variable) opens the journal of every click, the whole
health document and the demo's fault panel; :func:`is_operator` is the one check of it.
"""

from __future__ import annotations

import hmac
import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a worker's health listener checks the token without loading Starlette
    from starlette.requests import HTTPConnection

__all__ = [
    "MAX_AUTHORIZATION_LENGTH",
    "MAX_FORWARDED_LENGTH",
    "MAX_TRACKED_KEYS",
    "OPERATOR_TOKEN_ENV",
    "PeerOf",
    "RateLimit",
    "RateLimiter",
    "forwarded_peer",
    "is_operator",
    "operator",
    "peer_address",
]

MAX_FORWARDED_LENGTH = 1024
PeerOf = Callable[[Any], str]  # an ASGI scope -> the peer's address ("" when unknown)


def peer_address(scope: Any) -> str:
    """The host of the scope's ``client``, or ``""``. Never raises."""
    client = scope.get("client") if isinstance(scope, dict) else None
    if isinstance(client, list | tuple) and client and isinstance(client[0], str):
        return client[0]
    return ""


def _ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None


def forwarded_peer(trusted_proxies: Iterable[str]) -> PeerOf:
    """A :data:`PeerOf` that, for a request from one of ``trusted_proxies``, takes the nearest
    ``x-forwarded-for`` hop that is not itself a trusted proxy."""
    trusted = frozenset(ip for ip in map(_ip, trusted_proxies) if ip is not None)

    def peer(scope: Any) -> str:
        direct = peer_address(scope)
        if _ip(direct) not in trusted:
            return direct
        hops: list[str] = []
        for name, value in scope.get("headers", ()):
            if name == b"x-forwarded-for" and len(value) <= MAX_FORWARDED_LENGTH:
                hops += value.decode("latin-1").split(",")
        for hop in reversed(hops):
            ip = _ip(hop)
            if ip is None:
                return direct  # a hop we cannot read: do not guess past it
            if ip not in trusted:
                return ip
        return direct

    return peer


MAX_TRACKED_KEYS = 10_000


@dataclass(frozen=True, slots=True)
class RateLimit:
    """``per_second`` units (requests, spans) on average, with bursts of up to ``burst``."""

    per_second: float = 2.0
    burst: int = 20

    def __post_init__(self) -> None:
        if not self.per_second > 0 or self.burst < 1:
            raise ValueError("RateLimit needs per_second > 0 and burst >= 1")


class RateLimiter:
    """Not thread-safe: one per event loop, which is how the routes use it."""

    def __init__(
        self,
        limit: RateLimit,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_TRACKED_KEYS,
    ) -> None:
        self._limit = limit
        self._clock = clock
        self._max_keys = max_keys
        # key -> (tokens, time of last refill); oldest-used first, so eviction is O(1).
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    @property
    def limit(self) -> RateLimit:
        return self._limit

    def allow(self, key: str, cost: float = 1.0) -> bool:
        """Take ``cost`` tokens from ``key``'s bucket; ``False`` (taking none) when it has
        fewer. A cost above the burst is never allowed."""
        now = self._clock()
        tokens, last = self._buckets.pop(key, (float(self._limit.burst), now))
        tokens = min(self._limit.burst, tokens + (now - last) * self._limit.per_second)
        allowed = tokens >= cost
        if allowed:
            tokens -= cost
        self._buckets[key] = (tokens, now)
        # Forgetting the least recently seen key only ever gives it a fresh (full) bucket.
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        return allowed


OPERATOR_TOKEN_ENV = "CLICKTRACE_OPERATOR_TOKEN"
MAX_AUTHORIZATION_LENGTH = 1024


def is_operator(authorization: str | None, token: str | None) -> bool:
    """Whether an ``authorization`` header value carries ``token`` as a bearer token
    (compared in constant time; no token configured: nobody is)."""
    if not token or not authorization or len(authorization) > MAX_AUTHORIZATION_LENGTH:
        return False
    if authorization[:7].lower() != "bearer ":
        return False
    return hmac.compare_digest(authorization[7:].strip().encode(), token.encode())


def operator(conn: HTTPConnection, token: str | None) -> bool:
    """Whether the request carries the operator token."""
    return is_operator(conn.headers.get("authorization"), token)
