"""``/clicktrace/health``: is the loop able to close? Bus, outbox, journal, stuck clicks,
notifier replay store; each check is a function below (``bus_check``, ``journal_check``, …).

The app serves it as a route (:func:`health_route`, which ``clicktrace.install`` adds); a
process without HTTP serves the same answer with :func:`serve`. Both run the checks at most
once per interval and show anonymous callers the status alone.
"""

from __future__ import annotations

from clicktrace.health._checks import (
    Check,
    Result,
    bus_check,
    correlations_check,
    journal_check,
    outbox_check,
    replay_check,
)
from clicktrace.health._listener import serve
from clicktrace.health._report import health_route

__all__ = [
    "Check",
    "Result",
    "bus_check",
    "correlations_check",
    "health_route",
    "journal_check",
    "outbox_check",
    "replay_check",
    "serve",
]
