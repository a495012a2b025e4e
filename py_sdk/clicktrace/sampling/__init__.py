"""Sampling, decided once per click and honoured by every hop.

The decision is the browser's (the sampled flag of the traceparent its command carries, set by
the plugin's ``sampleRate``) or, for a command without one, the server's: :func:`sampler` is
the one place the server's ratio is set (its argument, else ``OTEL_TRACES_SAMPLER`` /
``OTEL_TRACES_SAMPLER_ARG``). Every later hop follows the decision: a child span follows its
parent's flag, and a consumer in ``link`` or ``new`` trace mode, which starts a trace of its
own, follows the flag of the message's context (carried under a context key of ``_decision``'s
in the context the bus gives its span), unless the subscription asks to ``resample``.

The journal does not depend on any of this: it records every click, sampled or not. The
sampler (:class:`ClickSampler`, in ``_sampler``) is an OpenTelemetry SDK class (the ``sdk``
extra), loaded on first use (PEP 562).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from clicktrace.sampling import _decision

if TYPE_CHECKING:
    from clicktrace.sampling._sampler import ClickSampler

__all__ = ["ClickSampler", "sampler"]


def _click_sampler() -> type[ClickSampler]:
    from clicktrace._optional import require

    require("opentelemetry.sdk.trace.sampling", "sdk", package="opentelemetry-sdk")
    from clicktrace.sampling._sampler import ClickSampler

    return ClickSampler


def sampler(ratio: float | None = None) -> ClickSampler:
    """The server's sampler: ``TracerProvider(sampler=clicktrace.sampling.sampler())``.

    ``ratio`` is the share of clicks *without a browser decision* that are traced; by
    default the one the standard environment variables name.
    """
    return _click_sampler()(_decision.ratio_from_env() if ratio is None else ratio)


def __getattr__(name: str) -> Any:
    if name == "ClickSampler":
        return _click_sampler()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
