"""A testing kit for apps built on clicktrace (the ``testing`` extra), and its pytest plugin
(entry point ``pytest11``).

- :func:`assert_one_trace` / :func:`trace_problems`: do a click's spans form one tree from
  the browser's action span to the notification that came back?
- :class:`SpanCollector` (fixture ``clicktrace_spans``) for apps run in-process, and
  :class:`OtlpReceiver` (fixture ``clicktrace_otlp``) for servers run as subprocesses;
- :func:`wait_settled`, :func:`flush_spans`, :func:`commands`: Playwright over the Pinia
  plugin's opt-in test hook;
- :func:`free_port`, :func:`unique_name`: ports and broker names that test runs sharing a
  machine (and its brokers) do not collide on.

The plugin is the two fixtures below and nothing else: each imports what it needs when a test
asks for it, so a test session that uses neither loads no SDK. The collector loads the
OpenTelemetry SDK when it is made, the receiver the protobuf types on first use (PEP 562).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from clicktrace._lazy import lazy
from clicktrace.testing._browser import Outcome, commands, flush_spans, wait_settled
from clicktrace.testing._ports import free_port, unique_name
from clicktrace.testing._spans import Span, SpanCollector, from_readable
from clicktrace.testing._trace import (
    BROWSER_LOOP,
    SERVER_LOOP,
    TraceBroken,
    assert_one_trace,
    trace_problems,
)

if TYPE_CHECKING:
    from clicktrace.testing._receiver import OtlpReceiver

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
    "free_port",
    "from_readable",
    "trace_problems",
    "unique_name",
    "wait_settled",
]


# No lazy __dir__ here: pytest reads every name a plugin's dir() lists, which would load the
# receiver (and the protobuf types) in every test session.
__getattr__, _ = lazy(__name__, {"OtlpReceiver": "clicktrace.testing._receiver"}, __all__)


@pytest.fixture
def clicktrace_spans() -> Iterator[SpanCollector]:
    """A private ``TracerProvider`` collecting spans in memory: pass
    ``clicktrace_spans.tracer_provider`` to the app under test, read ``.spans()``."""
    collector = SpanCollector()
    yield collector
    collector.shutdown()


@pytest.fixture(scope="session")
def clicktrace_otlp() -> Iterator[OtlpReceiver]:
    """An OTLP/HTTP receiver on loopback for the whole session: give ``.endpoint`` to a
    server run as a subprocess (``OTEL_EXPORTER_OTLP_ENDPOINT``) and read ``.spans()``."""
    from clicktrace.testing._receiver import OtlpReceiver

    with OtlpReceiver() as receiver:
        yield receiver
