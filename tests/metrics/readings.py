"""What an in-memory reader has collected, by instrument name (not a test module)."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics.export import InMemoryMetricReader


def points(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict[str, Any], Any]]]:
    """name -> [(attributes, value or histogram point)] of everything recorded so far."""
    out: dict[str, list[tuple[dict[str, Any], Any]]] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for p in metric.data.data_points:
                    out.setdefault(metric.name, []).append(
                        (dict(p.attributes or {}), getattr(p, "value", p))
                    )
    return out


def units(reader: InMemoryMetricReader) -> dict[str, str]:
    data = reader.get_metrics_data()
    assert data is not None
    return {
        m.name: m.unit or ""
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
