"""The peer address of a request, which the per-peer limits key on.

By default it is the ASGI scope's ``client`` host. Behind a reverse proxy that is the proxy for
every request, so all browsers would share one bucket: either let the server rewrite
``scope["client"]`` (uvicorn ``--proxy-headers --forwarded-allow-ips=<proxy>``), or build a
:func:`forwarded_peer` with the proxies you trust. ``x-forwarded-for`` is never trusted from
an address not in that set: anyone can send it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["MAX_FORWARDED_LENGTH", "PeerOf", "forwarded_peer", "peer_address"]

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
