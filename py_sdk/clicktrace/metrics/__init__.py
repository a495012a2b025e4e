"""Metrics derived from journal entries, through the OpenTelemetry metrics API.

:func:`observe` runs on every entry (every request, every message) and hands it to its stage's
handler (``._stages``), which counts or times it on the instruments of ``._instruments``
(:data:`INSTRUMENTS`, the documented list). Without a MeterProvider the API's proxy instruments do
nothing; one set later globally (``opentelemetry.metrics.set_meter_provider``) is picked up by
them. :func:`use` rebuilds the instruments on a given provider instead (tests, or an app that
keeps its provider local).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from opentelemetry import metrics
from opentelemetry.metrics import Meter, MeterProvider

from clicktrace._version import __version__
from clicktrace.journal import Entry, _record
from clicktrace.metrics._instruments import INSTRUMENTS
from clicktrace.metrics._stages import browser_counter, handlers

__all__ = ["INSTRUMENTS", "observe", "use"]


def _meter(provider: MeterProvider | None) -> Meter:
    return metrics.get_meter("clicktrace", __version__, meter_provider=provider)


_by_stage = handlers(_meter(None))
_lookup = _by_stage.get
_browser = browser_counter(_meter(None))


def use(provider: MeterProvider | None) -> None:
    """Record on ``provider`` from now on (``None``: the global one, as at import)."""
    global _by_stage, _lookup, _browser
    meter = _meter(provider)
    _by_stage = handlers(meter)
    _lookup = _by_stage.get
    _browser = browser_counter(meter)
    # What _record.enabled() reads (a provider the API loads from the environment counts).
    _record._meter_given = provider is not None or "OTEL_PYTHON_METER_PROVIDER" in os.environ


def observe(entry: Entry) -> None:
    """Count / time ``entry`` (called by :func:`clicktrace.journal._record` for every entry)."""
    handle = _lookup(entry.stage)
    if handle is not None:
        handle(entry)


def count_browser_stages(counts: Mapping[str, int]) -> None:
    """Count what became of the browser stages a request offered to the journal
    (``clicktrace.browser.stages``, by ``clicktrace.outcome``)."""
    count = _browser
    for outcome, n in counts.items():
        count(outcome, n)
