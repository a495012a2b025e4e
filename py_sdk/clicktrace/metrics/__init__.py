"""Metrics derived from journal entries, through the OpenTelemetry metrics API.

:func:`observe` runs on every entry (every request, every message) and hands it to its stage's
handler (``._stages``), which counts or times it on the instruments of ``._instruments``
(:data:`INSTRUMENTS`, the documented list). Without a MeterProvider the API's proxy instruments do
nothing; one set later globally (``opentelemetry.metrics.set_meter_provider``) is picked up by
them. :func:`use` rebuilds the instruments on a given provider instead (tests, or an app that
keeps its provider local).

:func:`active` says whether any of it is read: a provider given to :func:`use` or set globally
that is not the API's proxy or no-op. The edge counts its commands only then
(:func:`count_command`), as it journals them only with a journal set.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import metrics
from opentelemetry.metrics import Meter, MeterProvider, NoOpMeterProvider

from clicktrace._version import __version__
from clicktrace.journal import Entry
from clicktrace.metrics._instruments import INSTRUMENTS
from clicktrace.metrics._stages import browser_counter, command_counter, handlers

__all__ = ["INSTRUMENTS", "active", "observe", "use"]


def _meter(provider: MeterProvider | None) -> Meter:
    return metrics.get_meter("clicktrace", __version__, meter_provider=provider)


_commands = command_counter(_meter(None))
_by_stage = handlers(_meter(None), _commands)
_lookup = _by_stage.get
_browser = browser_counter(_meter(None))
_given: MeterProvider | None = None
_active = False
"""Known to be read: a provider that records was given, or the global one was set (for good:
OpenTelemetry sets it once)."""


def use(provider: MeterProvider | None) -> None:
    """Record on ``provider`` from now on (``None``: the global one, as at import)."""
    global _by_stage, _lookup, _browser, _commands, _given, _active
    meter = _meter(provider)
    _commands = command_counter(meter)
    _by_stage = handlers(meter, _commands)
    _lookup = _by_stage.get
    _browser = browser_counter(meter)
    _given = provider
    _active = provider is not None and not isinstance(provider, NoOpMeterProvider)


def active() -> bool:
    """Whether clicktrace's metrics are read: a MeterProvider given to :func:`use`, or one set
    globally, that is neither the API's proxy (nothing set yet) nor its no-op."""
    global _active
    if _active:
        return True
    if _given is not None:  # a no-op given on purpose
        return False
    provider = metrics.get_meter_provider()
    _active = not (isinstance(provider, NoOpMeterProvider) or type(provider).__name__ == _PROXY)
    return _active


_PROXY = "_ProxyMeterProvider"  # the API's stand-in until a provider is set


def count_command(refused: bool) -> None:
    """Count a command the edge answered (``clicktrace.commands``, accepted or refused)."""
    _commands[refused] += 1


def observe(entry: Entry) -> None:
    """Count / time ``entry`` (called by :func:`clicktrace.journal._record` for every entry)."""
    handle = _lookup(entry.stage)
    if handle is not None:
        handle(entry)


def count_browser_stages(counts: Mapping[str, int]) -> None:
    """Count what became of the browser stages a request offered to the journal
    (``clicktrace.browser.stages``, by ``clicktrace.outcome``)."""
    count = _browser
    for outcome, n in counts.items():
        count(outcome, n)
