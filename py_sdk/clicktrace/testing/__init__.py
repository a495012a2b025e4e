"""A testing kit for apps built on clicktrace (the ``testing`` extra).

- :func:`assert_one_trace` / :func:`trace_problems`: do a click's spans form one tree from
  the browser's action span to the notification that came back?
- :class:`SpanCollector` (fixture ``clicktrace_spans``) for apps run in-process, and
  :class:`OtlpReceiver` (fixture ``clicktrace_otlp``) for servers run as subprocesses;
- :func:`wait_settled`, :func:`flush_spans`, :func:`commands`: Playwright over the Pinia
  plugin's opt-in test hook.

The pytest plugin registers the fixtures and does nothing else. Collector and receiver load
the OpenTelemetry SDK and protobuf types on first use (PEP 562).
"""

from typing import TYPE_CHECKING, Any

from clicktrace.testing.browser import Outcome, commands, flush_spans, wait_settled
from clicktrace.testing.spans import Span, from_readable
from clicktrace.testing.trace import (
    BROWSER_LOOP,
    SERVER_LOOP,
    TraceBroken,
    assert_one_trace,
    trace_problems,
)

if TYPE_CHECKING:
    from clicktrace.testing.collector import SpanCollector
    from clicktrace.testing.receiver import OtlpReceiver

__all__ = [
    "BROWSER_LOOP",
    "SERVER_LOOP",
    "OtlpReceiver",
    "Outcome",
    "Span",
    "SpanCollector",
    "TraceBroken",
    "assert_one_trace",
    "commands",
    "flush_spans",
    "from_readable",
    "trace_problems",
    "wait_settled",
]


def __getattr__(name: str) -> Any:
    if name == "SpanCollector":
        from clicktrace.testing.collector import SpanCollector

        return SpanCollector
    if name == "OtlpReceiver":
        from clicktrace.testing.receiver import OtlpReceiver

        return OtlpReceiver
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
