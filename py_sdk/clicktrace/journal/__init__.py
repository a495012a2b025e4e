"""The journal: every stage a correlation id reached, so "where did my click go?" has an
answer without correlating log streams.

The SDK records stages at the places it already owns (edge, outbox, bus, notify, browser-span
ingest, ``step()``) through :func:`record`. Recording is explicit opt-in: nothing is stored until
the app calls :func:`use` with a journal; until then :func:`record` only feeds the metrics
(themselves no-ops without an OpenTelemetry MeterProvider). Recording never blocks or raises.

    journal = create_journal("memory://")      # or sqlite:///…, redis://…, postgresql://…
    use(journal)
    routes = [journal_route(journal, client_verifier=signer.verify), ...]
"""

from __future__ import annotations

from clicktrace.journal.entry import STAGES, Entry
from clicktrace.journal.factory import create_journal, create_store
from clicktrace.journal.memory import MemoryStore
from clicktrace.journal.record import Sink, current, record, set_process, use
from clicktrace.journal.route import journal_route
from clicktrace.journal.store import Store
from clicktrace.journal.verdict import Thresholds
from clicktrace.journal.writer import Journal

__all__ = [
    "STAGES",
    "Entry",
    "Journal",
    "MemoryStore",
    "Sink",
    "Store",
    "Thresholds",
    "create_journal",
    "create_store",
    "current",
    "journal_route",
    "record",
    "set_process",
    "use",
]
