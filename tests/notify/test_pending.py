from __future__ import annotations

import asyncio
from collections.abc import Hashable

import pytest

from clicktrace.notify.pending import Pending


async def test_the_cap_is_per_peer_and_settling_frees_a_place() -> None:
    pending = Pending(2)
    assert pending.admit("a1", "10.0.0.1") and pending.admit("a2", "10.0.0.1")
    assert not pending.admit("a3", "10.0.0.1")
    assert pending.admit("b1", "10.0.0.2")
    assert pending.admit("a1", "10.0.0.1")  # already counted: not twice
    pending.settle("a1")
    pending.settle("a1")  # idempotent
    assert pending.count("10.0.0.1") == 1 and "a1" not in pending
    assert pending.admit("a3", "10.0.0.1")


async def test_a_key_that_does_not_settle_in_time_expires_once() -> None:
    expired: list[Hashable] = []
    done = asyncio.Event()

    async def on_expire(key: Hashable) -> None:
        expired.append(key)
        done.set()

    pending = Pending(4, timeout=0.01, on_expire=on_expire)
    pending.admit("slow", "p")
    pending.admit("quick", "p")
    pending.settle("quick")
    await asyncio.wait_for(done.wait(), 10)
    await asyncio.sleep(0.05)
    assert expired == ["slow"] and pending.count("p") == 0
    await pending.aclose()


@pytest.mark.parametrize(
    "kwargs", [{"max_per_peer": 0}, {"max_per_peer": True}, {"max_per_peer": 1, "timeout": 0}]
)
def test_nonsense_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Pending(**kwargs)  # type: ignore[arg-type]
