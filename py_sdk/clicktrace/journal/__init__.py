"""The journal: every stage a correlation id reached, so "where did my click go?" has an
answer without correlating log streams.

The SDK records stages at the places it already owns (edge, outbox, bus, notify, browser-span
ingest, ``step()``) through :func:`record`. Recording is explicit opt-in: nothing is stored until
the app calls :func:`use` with a journal; until then :func:`record` only feeds the metrics
(themselves no-ops without an OpenTelemetry MeterProvider). Recording never blocks or raises.
"""

from __future__ import annotations

from clicktrace.journal.entry import STAGES, Entry
from clicktrace.journal.record import Sink, current, record, use

__all__ = ["STAGES", "Entry", "Sink", "current", "record", "use"]
