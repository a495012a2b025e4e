"""clicktrace.web._limits: the peer address (``x-forwarded-for`` only from trusted proxies),
token buckets per key, and the operator's bearer token (the journal's, health's, the demo's)."""

from __future__ import annotations

from typing import Any

import pytest

from clicktrace.web._limits import RateLimit, RateLimiter, forwarded_peer, is_operator, peer_address


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


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refill_per_key() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(per_second=2.0, burst=3), clock=clock)
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("b")  # another client has its own bucket
    clock.now += 0.5  # one token back at 2/s
    assert limiter.allow("a")
    assert not limiter.allow("a")
    clock.now += 60  # refill never exceeds the burst
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]


def test_memory_is_bounded() -> None:
    limiter = RateLimiter(RateLimit(per_second=0.001, burst=1), clock=FakeClock(), max_keys=2)
    assert limiter.allow("a")
    assert not limiter.allow("a")
    limiter.allow("b")
    limiter.allow("c")  # evicts "a", the least recently seen
    assert limiter.allow("a")


@pytest.mark.parametrize(("per_second", "burst"), [(0.0, 1), (-1.0, 1), (1.0, 0)])
def test_rejects_nonsense_limits(per_second: float, burst: int) -> None:
    with pytest.raises(ValueError):
        RateLimit(per_second=per_second, burst=burst)


def test_a_cost_takes_that_many_tokens_or_none() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(per_second=1.0, burst=10), clock=clock)
    assert limiter.allow("peer", cost=8)
    assert not limiter.allow("peer", cost=3)  # refused whole: the 2 left stay
    assert limiter.allow("peer", cost=2)
    assert not limiter.allow("other", cost=11)  # above the burst: never


@pytest.mark.parametrize(
    ("authorization", "token", "expected"),
    [
        ("Bearer s3cret", "s3cret", True),
        ("bearer   s3cret  ", "s3cret", True),
        ("BEARER s3cret", "s3cret", True),
        ("Bearer s3cre", "s3cret", False),
        ("Bearer s3cret", None, False),
        ("Bearer ", "", False),
        ("Token s3cret", "s3cret", False),
        (None, "s3cret", False),
        ("Bearer " + "s" * 2000, "s" * 2000, False),
    ],
)
def test_the_operator_is_whoever_sends_the_configured_bearer_token(
    authorization: str | None, token: str | None, expected: bool
) -> None:
    assert is_operator(authorization, token) is expected
