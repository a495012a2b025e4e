"""``/clicktrace/health``: is the loop able to close? Bus, outbox, journal, stuck clicks,
notifier replay store; see :mod:`clicktrace.health.checks` for each check."""

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
from clicktrace.health.route import HEALTH_PATH, health_route, run_checks

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
]
