"""The instruments clicktrace reports: names, kinds, units and buckets, created on a meter.

Counters are plain ints reported by asynchronous counters when the SDK collects (an increment
instead of the SDK's measurement path); histograms are recorded as they come (a histogram
cannot be observed later).
"""

from __future__ import annotations

from opentelemetry.metrics import CallbackOptions, Histogram, Meter, Observation

__all__ = ["INSTRUMENTS", "histograms", "tally"]

# The HTTP semantic conventions' advice for second-valued histograms, stretched at the top
# because a click may wait for a queue that lags: 30 s and 60 s buckets.
_SECONDS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    30.0,
    60.0,
)
_ATTEMPTS = (1, 2, 3, 4, 5, 7, 10, 15, 20)

# name: (kind, unit, description); the documented list (docs/observe.md, "Metrics").
INSTRUMENTS: dict[str, tuple[str, str, str]] = {
    "clicktrace.commands": (
        "counter",
        "{command}",
        "Commands answered by the edge (outcome accepted / refused)",
    ),
    "clicktrace.clicks.settled": (
        "counter",
        "{click}",
        "Clicks settled in the browser (confirmed / rejected / timed_out)",
    ),
    "messaging.client.sent.messages": ("counter", "{message}", "Messages published"),
    "messaging.client.consumed.messages": (
        "counter",
        "{message}",
        "Messages delivered to a handler (every attempt)",
    ),
    "clicktrace.messages.retried": ("counter", "{message}", "Handler failures to be retried"),
    "clicktrace.messages.dead_lettered": ("counter", "{message}", "Messages given up on"),
    "clicktrace.notifications.sent": ("counter", "{notification}", "Outcomes sent to a tab"),
    "clicktrace.notifications.replayed": (
        "counter",
        "{notification}",
        "Notifications replayed to a resuming socket",
    ),
    "clicktrace.browser.stages": (
        "counter",
        "{stage}",
        "Browser stages offered to the journal, by what became of them (recorded, or why not)",
    ),
    "clicktrace.click.duration": ("histogram", "s", "Click to settled, in the browser"),
    "clicktrace.accept_to_publish.duration": (
        "histogram",
        "s",
        "Command accepted (envelope created) to published on the bus",
    ),
    "clicktrace.publish_to_consume.duration": (
        "histogram",
        "s",
        "Published to delivered to a handler",
    ),
    "clicktrace.consume_to_notify.duration": (
        "histogram",
        "s",
        "Delivered to a handler to the outcome sent to the tab",
    ),
    "messaging.process.duration": ("histogram", "s", "Handler run time per attempt"),
    "clicktrace.step.duration": ("histogram", "s", "step() run time"),
    "clicktrace.attempts": (
        "histogram",
        "{attempt}",
        "Attempts a message took to be acked or dead-lettered",
    ),
}


class _Tally:
    """Counts per attribute set, kept as plain ints and reported by an asynchronous counter
    when the SDK collects: an increment costs a list store, where a synchronous ``add``
    costs the SDK's whole measurement path (about 58,000 instructions, bench/observe.py)."""

    __slots__ = ("attributes", "counts")

    def __init__(self, *attributes: dict[str, str]) -> None:
        self.attributes = attributes
        self.counts = [0] * len(attributes)

    def __call__(self, options: CallbackOptions) -> list[Observation]:
        return [Observation(n, a) for n, a in zip(self.counts, self.attributes, strict=True) if n]


def histograms(meter: Meter) -> dict[str, Histogram]:
    """Every histogram of :data:`INSTRUMENTS`, created on ``meter``, by name."""
    created: dict[str, Histogram] = {}
    for name, (kind, unit, description) in INSTRUMENTS.items():
        if kind == "histogram":
            bounds = _ATTEMPTS if unit == "{attempt}" else _SECONDS
            created[name] = meter.create_histogram(
                name, unit, description, explicit_bucket_boundaries_advisory=bounds
            )
    return created


def tally(meter: Meter, name: str, *attributes: dict[str, str]) -> list[int]:
    """The counter ``name`` created on ``meter``: one count per attribute set, in that order,
    for the caller to increment."""
    _, unit, description = INSTRUMENTS[name]
    counts = _Tally(*attributes)
    meter.create_observable_counter(name, [counts], unit, description)
    return counts.counts
