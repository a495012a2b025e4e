from __future__ import annotations

from typing import Any

import pytest

from clicktrace.web._peer import forwarded_peer, peer_address


def scope(client: Any, *forwarded: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "client": client,
        "headers": [(b"x-forwarded-for", value) for value in forwarded],
    }


@pytest.mark.parametrize(
    ("client", "peer"),
    [
        (("203.0.113.7", 5000), "203.0.113.7"),
        (["::1", 1], "::1"),
        (None, ""),
        ((), ""),
        ((7, 1), ""),
        ("nonsense", ""),
    ],
)
def test_the_peer_is_the_scopes_client_host(client: Any, peer: str) -> None:
    assert peer_address(scope(client)) == peer
    assert peer_address("not a scope") == ""


def test_forwarded_for_counts_only_from_a_trusted_proxy() -> None:
    peer = forwarded_peer(["10.0.0.1", "10.0.0.2", "not an ip"])
    # Anyone may send x-forwarded-for: from an untrusted peer it is ignored.
    assert peer(scope(("198.51.100.9", 1), b"203.0.113.7")) == "198.51.100.9"
    # From the proxy: the nearest hop that is not a trusted proxy (the client's own claims to
    # the left of it are the client's to forge).
    assert peer(scope(("10.0.0.1", 1), b"6.6.6.6, 203.0.113.7, 10.0.0.2")) == "203.0.113.7"
    assert peer(scope(("10.0.0.1", 1), b"6.6.6.6", b"203.0.113.7")) == "203.0.113.7"
    assert peer(scope(("10.0.0.1", 1), b"garbage, 203.0.113.7")) == "203.0.113.7"
    assert peer(scope(("10.0.0.1", 1), b"203.0.113.7, garbage")) == "10.0.0.1"
    assert peer(scope(("10.0.0.1", 1))) == "10.0.0.1"
    assert peer(scope(("10.0.0.1", 1), b"1.2.3.4" * 500)) == "10.0.0.1"  # over the cap
