"""Sampling, decided once per click and honoured by every hop.

The decision is the browser's (the sampled flag of the traceparent its command carries, set by
the plugin's ``sampleRate``) or, for a command without one, the server's: :func:`sampler` is
the one place the server's ratio is set (its argument, else ``OTEL_TRACES_SAMPLER`` /
``OTEL_TRACES_SAMPLER_ARG``). Every later hop follows the decision: a child span follows its
parent's flag, and a consumer in ``link`` or ``new`` trace mode, which starts a trace of its
own, follows the flag of the message's context (carried as :data:`DECISION` in the context
the bus gives its span), unless the subscription asks to ``resample``.

The journal does not depend on any of this: it records every click, sampled or not. The
sampler is an OpenTelemetry SDK class (the ``sdk`` extra), loaded on first use (PEP 562).
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from opentelemetry.context import Context, create_key, get_value

if TYPE_CHECKING:
    from clicktrace.sampling.click_sampler import ClickSampler

__all__ = ["DECISION", "ClickSampler", "decided", "ratio_from_env", "sampler"]

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


def _click_sampler() -> type[ClickSampler]:
    from clicktrace._optional import require

    require("opentelemetry.sdk.trace.sampling", "sdk", package="opentelemetry-sdk")
    from clicktrace.sampling.click_sampler import ClickSampler

    return ClickSampler


def sampler(ratio: float | None = None) -> ClickSampler:
    """The server's sampler: ``TracerProvider(sampler=clicktrace.sampling.sampler())``.

    ``ratio`` is the share of clicks *without a browser decision* that are traced; by
    default the one the standard environment variables name.
    """
    return _click_sampler()(ratio_from_env() if ratio is None else ratio)


def __getattr__(name: str) -> Any:
    if name == "ClickSampler":
        return _click_sampler()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
