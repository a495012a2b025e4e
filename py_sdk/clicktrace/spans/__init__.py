"""The spans clicktrace opens itself (server, bus producer / consumer, notify, steps), recorded
below the OpenTelemetry SDK's per-span cost and exported through the provider's own span
processors, so every exporter works unchanged. :func:`get_tracer` is the one way in; the lean
tracer and span (``_tracer``, ``_span``) need the ``sdk`` extra and load only when the provider
is the SDK's.

Lean spans read private parts of the SDK. Before the first lean tracer is made, the installed
SDK is checked once against everything they read; if any part differs, one warning says which
and every clicktrace span is the SDK's own from then on."""

from __future__ import annotations

import logging
import os
import sys
import threading

from opentelemetry import trace as trace_api

__all__ = ["get_tracer"]

_LOG = logging.getLogger("clicktrace.spans")
_OFF = frozenset({"0", "false", "no", "off"})
_sdk_fits: bool | None = None
"""Whether the installed SDK is as lean spans read it: unknown until the first SDK tracer."""
_checking = threading.Lock()


def get_tracer(
    name: str,
    version: str | None = None,
    *,
    tracer_provider: trace_api.TracerProvider | None = None,
    lean: bool | None = None,
) -> trace_api.Tracer:
    """The tracer clicktrace's own spans come from: a ``LeanTracer`` over the SDK's tracer
    when the provider is the SDK's and the installed SDK is as lean spans read it (it falls
    back to SDK spans whenever the pipeline needs them), else the provider's own tracer (the
    API's no-op, or another implementation).

    ``lean=None`` reads ``CLICKTRACE_LEAN_SPANS`` (default on; ``0`` / ``false`` turns every
    clicktrace component back to SDK spans)."""
    tracer = trace_api.get_tracer(name, version, tracer_provider=tracer_provider)
    if lean is None:
        lean = os.environ.get("CLICKTRACE_LEAN_SPANS", "").strip().lower() not in _OFF
    # Without the SDK imported, the provider cannot be the SDK's: nothing more to load.
    sdk = sys.modules.get("opentelemetry.sdk.trace")
    if not lean or sdk is None or not isinstance(tracer, sdk.Tracer) or not _fits(tracer):
        return tracer
    from clicktrace.spans._tracer import LeanTracer

    return LeanTracer(tracer)


def _fits(tracer: trace_api.Tracer) -> bool:
    """Whether the installed SDK is as lean spans read it: checked on the first SDK tracer,
    once per process; a mismatch is logged once."""
    global _sdk_fits
    with _checking:
        if _sdk_fits is None:
            try:
                from clicktrace.spans._tracer import sdk_mismatch

                why = sdk_mismatch(tracer)  # type: ignore[arg-type]
            except Exception as exc:  # the lean modules do not even load against this SDK
                why = f"clicktrace.spans cannot load ({type(exc).__name__}: {exc})"
            _sdk_fits = why is None
            if why is not None:
                _LOG.warning(
                    "lean spans are off: opentelemetry-sdk %s is not as they read it: %s. "
                    "clicktrace's spans are the SDK's own (as with CLICKTRACE_LEAN_SPANS=0)",
                    _sdk_version(),
                    why,
                )
        return _sdk_fits


def _sdk_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("opentelemetry-sdk")
    except PackageNotFoundError:
        return "(version unknown)"
