"""``/clicktrace/health``: is the loop able to close? Bus, outbox, journal, stuck clicks,
notifier replay store; see :mod:`clicktrace.health.checks` for each check.

The app serves it as a route (:func:`health_route`, which ``clicktrace.install`` adds); a
process without HTTP serves the same answer with :func:`serve`. Both run the checks at most
once per interval and show anonymous callers the status alone (:mod:`.report`).
"""

from __future__ import annotations

from clicktrace.health.checks import (
    Check,
    Result,
    bus_check,
    correlations_check,
    journal_check,
    outbox_check,
    replay_check,
)
from clicktrace.health.listener import serve
from clicktrace.health.report import HEALTH_PATH, run_checks
from clicktrace.health.route import health_route

__all__ = [
    "HEALTH_PATH",
    "Check",
    "Result",
    "bus_check",
    "correlations_check",
    "health_route",
    "journal_check",
    "outbox_check",
    "replay_check",
    "run_checks",
    "serve",
]
