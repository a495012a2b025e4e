"""The click's sampling decision as every hop reads it: carried in an OpenTelemetry context
(:data:`DECISION`) where a span starts a new trace for the click, and, for a click that arrives
with no decision at all, the server's ratio as the standard environment variables name it.

No SDK here: the bus reads and carries the decision whether or not the SDK is installed."""

from __future__ import annotations

import logging
import os

from opentelemetry.context import Context, create_key, get_value

__all__ = ["DECISION", "decided", "ratio_from_env"]

_LOG = logging.getLogger("clicktrace.sampling")
DECISION = create_key("clicktrace-sampled")
"""Context key: the click's decision (bool) where a span starts a new trace for it."""
_RATIOS = {
    "always_on": 1.0,
    "parentbased_always_on": 1.0,
    "always_off": 0.0,
    "parentbased_always_off": 0.0,
}
_WITH_ARG = ("traceidratio", "parentbased_traceidratio")


def decided(context: Context | None) -> bool | None:
    """The click's decision carried in ``context`` (:data:`DECISION`), else ``None``."""
    value = get_value(DECISION, context)
    return value if isinstance(value, bool) else None


def ratio_from_env() -> float:
    """The ratio ``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG`` name (default 1.0)."""
    name = os.environ.get("OTEL_TRACES_SAMPLER", "parentbased_always_on").strip().lower()
    if name in _RATIOS:
        return _RATIOS[name]
    if name not in _WITH_ARG:
        _LOG.warning(
            "OTEL_TRACES_SAMPLER=%r is not a sampler clicktrace knows: sampling all", name[:64]
        )
        return 1.0
    try:
        ratio = float(os.environ.get("OTEL_TRACES_SAMPLER_ARG", "1.0"))
    except ValueError:
        ratio = -1.0
    if not 0.0 <= ratio <= 1.0:  # also NaN
        _LOG.warning("OTEL_TRACES_SAMPLER_ARG must be a number in [0, 1]: sampling all")
        return 1.0
    return ratio
