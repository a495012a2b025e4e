"""Metrics derived from journal entries (placeholder: filled in by the metrics work)."""

from __future__ import annotations

from clicktrace.journal.entry import Entry

__all__ = ["observe"]


def observe(entry: Entry) -> None:
    """Count / time ``entry`` through the OpenTelemetry metrics API (no-op without a provider)."""
