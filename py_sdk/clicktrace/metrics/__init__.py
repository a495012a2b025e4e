"""Metrics derived from journal entries, through the OpenTelemetry metrics API.

:func:`observe` runs on every entry (every request, every message) and hands it to its stage's
handler (``clicktrace.metrics.stages``), which counts or times it on the instruments of
``clicktrace.metrics.instruments``. Without a MeterProvider the API's proxy instruments do
nothing; one set later globally (``opentelemetry.metrics.set_meter_provider``) is picked up by
them. :func:`use` rebuilds the instruments on a given provider instead (tests, or an app that
keeps its provider local).
"""

from __future__ import annotations

from opentelemetry import metrics
from opentelemetry.metrics import Meter, MeterProvider

from clicktrace._version import __version__
from clicktrace.journal.entry import Entry
from clicktrace.metrics.instruments import INSTRUMENTS
from clicktrace.metrics.stages import current_delivery, handlers

__all__ = ["INSTRUMENTS", "current_delivery", "observe", "use"]


def _meter(provider: MeterProvider | None) -> Meter:
    return metrics.get_meter("clicktrace", __version__, meter_provider=provider)


_by_stage = handlers(_meter(None))
_lookup = _by_stage.get


def use(provider: MeterProvider | None) -> None:
    """Record on ``provider`` from now on (``None``: the global one, as at import)."""
    global _by_stage, _lookup
    _by_stage = handlers(_meter(provider))
    _lookup = _by_stage.get


def observe(entry: Entry) -> None:
    """Count / time ``entry`` (called by :func:`clicktrace.journal.record` for every entry)."""
    handle = _lookup(entry.stage)
    if handle is not None:
        handle(entry)
