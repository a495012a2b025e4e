from __future__ import annotations

import pytest

from clicktrace.web._ratelimit import RateLimit, RateLimiter


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
