"""The journal: every stage a correlation id reached, so "where did my click go?" has an
answer without correlating log streams.

The SDK records stages at the places it already owns (edge, outbox, bus, notify, browser-span
ingest, ``step()``) through :func:`record`. Recording is explicit opt-in: nothing is stored until
the app calls :func:`use` with a journal; until then :func:`record` only feeds the metrics
(themselves no-ops without an OpenTelemetry MeterProvider). Recording never blocks or raises.

    journal = create_journal("memory://")      # or sqlite:///…, redis://…, postgresql://…
    use(journal)
    routes = [journal_route(journal, client_verifier=signer.verify), ...]

The route is the only piece that speaks HTTP: it is loaded on first use (PEP 562), so
``import clicktrace.journal`` (every bus message and request records through it) loads no
Starlette and no web module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clicktrace._lazy import lazy
from clicktrace.journal._entry import Entry
from clicktrace.journal._factory import create_journal, create_store
from clicktrace.journal._memory import MemoryStore
from clicktrace.journal._record import record, set_process, use
from clicktrace.journal._store import Store
from clicktrace.journal._verdict import Thresholds
from clicktrace.journal._writer import Journal

if TYPE_CHECKING:
    from clicktrace.journal._route import journal_route

__all__ = [
    "Entry",
    "Journal",
    "MemoryStore",
    "Store",
    "Thresholds",
    "create_journal",
    "create_store",
    "journal_route",
    "record",
    "set_process",
    "use",
]


__getattr__, __dir__ = lazy(__name__, {"journal_route": "clicktrace.journal._route"}, __all__)
