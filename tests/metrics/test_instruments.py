"""clicktrace.metrics._instruments: the documented instruments, and counters that report as
the cumulative monotonic sums a backend expects."""

from __future__ import annotations

from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from clicktrace import metrics
from clicktrace.ids import new_id
from clicktrace.journal import record

from .readings import points


def test_every_instrument_has_a_unit() -> None:
    assert all(unit for _, unit, _ in metrics.INSTRUMENTS.values())


def test_counters_are_cumulative_monotonic_sums_across_collections(
    reader: InMemoryMetricReader,
) -> None:
    cid = new_id()
    record("published", correlation_id=cid)
    assert points(reader)["messaging.client.sent.messages"][0][1] == 1
    record("published", correlation_id=cid)
    record("published", correlation_id=cid)
    assert points(reader)["messaging.client.sent.messages"][0][1] == 3
    data = reader.get_metrics_data()
    assert data is not None
    sums = [
        m.data
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == "messaging.client.sent.messages"
    ]
    assert all(getattr(s, "is_monotonic", False) for s in sums)
