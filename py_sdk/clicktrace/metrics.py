"""Metrics derived from journal entries, through the OpenTelemetry metrics API.

:func:`observe` runs on every entry (every request, every message), so each stage maps, once,
to a small function holding precomputed attribute dicts. Counters are plain ints reported by
asynchronous counters when the SDK collects (an increment instead of the SDK's measurement
path); histograms are recorded as they come (a histogram cannot be observed later).
Without a MeterProvider the API's proxy instruments do nothing; one set later globally
(``opentelemetry.metrics.set_meter_provider``) is picked up by them. :func:`use` rebuilds the
instruments on a given provider instead (tests, or an app that keeps its provider local).
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Histogram, Meter, MeterProvider, Observation

from clicktrace._version import __version__
from clicktrace.journal.entry import Entry

__all__ = ["INSTRUMENTS", "current_delivery", "observe", "use"]

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
_MAX_STEP_NAMES = 256  # distinct step names kept as attributes; others are "_OTHER"

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

_OUTCOME = "clicktrace.outcome"
_Handle = Callable[[Entry], None]

# The delivery the current task is handling (its "delivered" entry): consume→notify is timed
# from it, and step() takes its attempt from it.
_delivery: ContextVar[Entry | None] = ContextVar("clicktrace_delivery", default=None)


def current_delivery() -> Entry | None:
    """The ``delivered`` entry of the message the current task is handling, if any."""
    return _delivery.get()


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


def _outcomes(*values: str) -> tuple[dict[str | None, int], tuple[dict[str, str], ...]]:
    """Slot per known outcome, ``_OTHER`` last (also for ``None``): an odd outcome costs no
    allocation and no new series."""
    index: dict[str | None, int] = {v: i for i, v in enumerate(values)}
    return index, (*({_OUTCOME: v} for v in values), {_OUTCOME: "_OTHER"})


def _build(meter: Meter) -> dict[str, _Handle]:
    histograms: dict[str, Histogram] = {}

    def tally(name: str, *attributes: dict[str, str]) -> list[int]:
        _, unit, description = INSTRUMENTS[name]
        counts = _Tally(*attributes)
        meter.create_observable_counter(name, [counts], unit, description)
        return counts.counts

    for name, (kind, unit, description) in INSTRUMENTS.items():
        if kind == "histogram":
            bounds = _ATTEMPTS if unit == "{attempt}" else _SECONDS
            histograms[name] = meter.create_histogram(
                name, unit, description, explicit_bucket_boundaries_advisory=bounds
            )

    none: dict[str, str] = {}
    commands = tally("clicktrace.commands", {_OUTCOME: "accepted"}, {_OUTCOME: "refused"})
    settled_index, settled_attrs = _outcomes("confirmed", "rejected", "timed_out")
    settled = tally("clicktrace.clicks.settled", *settled_attrs)
    settled_other = len(settled_attrs) - 1
    click_time = histograms["clicktrace.click.duration"].record
    sent = tally("messaging.client.sent.messages", {"messaging.operation.name": "send"})
    accept_to_publish = histograms["clicktrace.accept_to_publish.duration"].record
    consumed = tally("messaging.client.consumed.messages", {"messaging.operation.name": "process"})
    publish_to_consume = histograms["clicktrace.publish_to_consume.duration"].record
    retried = tally("clicktrace.messages.retried", none)
    dead = tally("clicktrace.messages.dead_lettered", none)
    process = histograms["messaging.process.duration"].record
    ok_process = {"messaging.operation.name": "process"}
    failed_process = {"messaging.operation.name": "process", "error.type": "_OTHER"}
    attempts = histograms["clicktrace.attempts"].record
    acked_attempts, dead_attempts = {_OUTCOME: "acked"}, {_OUTCOME: "dead_lettered"}
    notified_index, notified_attrs = _outcomes("confirmed", "rejected", "progress")
    notified = tally("clicktrace.notifications.sent", *notified_attrs)
    notified_other = len(notified_attrs) - 1
    consume_to_notify = histograms["clicktrace.consume_to_notify.duration"].record
    replayed = tally("clicktrace.notifications.replayed", none)
    step_time = histograms["clicktrace.step.duration"].record
    step_attrs: dict[tuple[str | None, str | None], dict[str, str]] = {}
    set_delivery = _delivery.set
    get_delivery = _delivery.get

    # ``counts[i] += 1`` runs without a thread switch inside it on CPython's GIL build.
    def on_accepted(entry: Entry) -> None:
        commands[0] += 1

    def on_refused(entry: Entry) -> None:
        commands[1] += 1

    def on_settled(entry: Entry) -> None:
        i = settled_index.get(entry.outcome, settled_other)
        settled[i] += 1
        if entry.duration_ms is not None:
            click_time(max(entry.duration_ms, 0.0) / 1000.0, settled_attrs[i])

    def on_published(entry: Entry) -> None:
        sent[0] += 1
        if entry.duration_ms is not None:
            accept_to_publish(max(entry.duration_ms, 0.0) / 1000.0, none)

    def on_delivered(entry: Entry) -> None:
        consumed[0] += 1
        set_delivery(entry)
        if entry.duration_ms is not None:
            publish_to_consume(max(entry.duration_ms, 0.0) / 1000.0, none)

    def on_acked(entry: Entry) -> None:
        if entry.duration_ms is not None:
            process(max(entry.duration_ms, 0.0) / 1000.0, ok_process)
        if entry.attempt is not None:
            attempts(entry.attempt, acked_attempts)

    def on_retried(entry: Entry) -> None:
        retried[0] += 1
        if entry.duration_ms is not None:
            process(max(entry.duration_ms, 0.0) / 1000.0, failed_process)

    def on_dead_lettered(entry: Entry) -> None:
        dead[0] += 1
        if entry.duration_ms is not None:
            process(max(entry.duration_ms, 0.0) / 1000.0, failed_process)
        if entry.attempt is not None:
            attempts(entry.attempt, dead_attempts)

    def on_notified(entry: Entry) -> None:
        notified[notified_index.get(entry.outcome, notified_other)] += 1
        ms = entry.duration_ms
        if ms is None:
            delivery = get_delivery()
            if delivery is None or delivery.correlation_id != entry.correlation_id:
                return
            ms = entry.at - delivery.at
        consume_to_notify(max(ms, 0.0) / 1000.0, none)

    def on_replayed(entry: Entry) -> None:
        replayed[0] += 1

    def on_step(entry: Entry) -> None:
        if entry.duration_ms is None:
            return
        key = (entry.detail, entry.outcome)
        attributes = step_attrs.get(key)
        if attributes is None:
            # App-chosen names: kept as attributes up to a bound, so a name built from data
            # cannot grow the series without end.
            name = entry.detail if len(step_attrs) < _MAX_STEP_NAMES else None
            attributes = {"step.name": name or "_OTHER", _OUTCOME: entry.outcome or "_OTHER"}
            if name is not None:
                step_attrs[key] = attributes
        step_time(max(entry.duration_ms, 0.0) / 1000.0, attributes)

    return {
        "accepted": on_accepted,
        "refused": on_refused,
        "settled": on_settled,
        "published": on_published,
        "delivered": on_delivered,
        "acked": on_acked,
        "retried": on_retried,
        "dead_lettered": on_dead_lettered,
        "notified": on_notified,
        "replayed": on_replayed,
        "step": on_step,
    }


def _meter(provider: MeterProvider | None) -> Meter:
    return metrics.get_meter("clicktrace", __version__, meter_provider=provider)


_by_stage = _build(_meter(None))
_lookup = _by_stage.get


def use(provider: MeterProvider | None) -> None:
    """Record on ``provider`` from now on (``None``: the global one, as at import)."""
    global _by_stage, _lookup
    _by_stage = _build(_meter(provider))
    _lookup = _by_stage.get


def observe(entry: Entry) -> None:
    """Count / time ``entry`` (called by :func:`clicktrace.journal.record` for every entry)."""
    handle = _lookup(entry.stage)
    if handle is not None:
        handle(entry)
