"""The console's views as units: a click's summary, percentiles, the latency series."""

from __future__ import annotations

from clicktrace.console._views import _percentile, latency, summary
from clicktrace.ids import new_id
from clicktrace.journal import MemoryStore, Thresholds
from tests.console.conftest import confirmed, e, now_ms


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert _percentile(values, 0.5) == 50.0 and _percentile(values, 0.99) == 99.0
    assert _percentile([7.0], 0.99) == 7.0 and _percentile([], 0.5) is None


def test_the_action_is_the_clicks_name_else_the_route_the_edge_answered() -> None:
    now = now_ms()
    assert summary(confirmed(now), now, Thresholds(), {})["action"] == "todos.add"
    cid = new_id()
    plain = [e(cid, "accepted", now, detail="POST /todos 202", outcome="202")]
    s = summary(plain, now, Thresholds(), {})
    assert s["action"] == "POST /todos" and s["client_id"] == "tab-1"
    assert s["line"].startswith("in flight")


async def test_latency_puts_each_click_in_the_minute_it_started() -> None:
    store = MemoryStore()
    now = now_ms()
    await store.write(
        [*confirmed(now - 30_000), *confirmed(now - 90_000), *confirmed(now - 95_000)]
    )
    body = await latency(store, 3, now, Thresholds(), {})
    counts = [point["count"] for point in body["series"]]
    assert counts == [0, 2, 1] and body["click_to_settled"] == {
        "p50_ms": 25.0,
        "p99_ms": 25.0,
        "count": 3,
    }
    assert [p["t_ms"] for p in body["series"]] == [now - 180_000, now - 120_000, now - 60_000]
