"""Metrics derived from journal entries, through the OpenTelemetry metrics API.

:func:`observe` runs on every entry (every request, every message), so each stage maps, once,
to a small function holding its instrument's bound method and precomputed attribute dicts:
observing is a dict lookup and one or two calls, with no allocation but the float it records.
Without a MeterProvider the API's proxy instruments do nothing; one set later globally
(``opentelemetry.metrics.set_meter_provider``) is picked up by them. :func:`use` rebuilds the
instruments on a given provider instead (tests, or an app that keeps its provider local).
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar

from opentelemetry import metrics
from opentelemetry.metrics import Counter, Histogram, Meter, MeterProvider

from clicktrace import __version__
from clicktrace.journal.entry import Entry

__all__ = ["INSTRUMENTS", "current_delivery", "observe", "use"]

# The HTTP semantic conventions' advice for second-valued histograms, stretched at the top
# because a click may wait for a queue that lags: 30 s and 60 s buckets.
_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
            30.0, 60.0)
_ATTEMPTS = (1, 2, 3, 4, 5, 7, 10, 15, 20)
_MAX_STEP_NAMES = 256  # distinct step names kept as attributes; others are "_OTHER"

# name: (kind, unit, description); the documented list (docs/observe.md, "Metrics").
INSTRUMENTS: dict[str, tuple[str, str, str]] = {
    "clicktrace.commands": (
        "counter", "{command}", "Commands answered by the edge (outcome accepted / refused)"),
    "clicktrace.clicks.settled": (
        "counter", "{click}", "Clicks settled in the browser (confirmed / rejected / timed_out)"),
    "messaging.client.sent.messages": ("counter", "{message}", "Messages published"),
    "messaging.client.consumed.messages": (
        "counter", "{message}", "Messages delivered to a handler (every attempt)"),
    "clicktrace.messages.retried": ("counter", "{message}", "Handler failures to be retried"),
    "clicktrace.messages.dead_lettered": ("counter", "{message}", "Messages given up on"),
    "clicktrace.notifications.sent": ("counter", "{notification}", "Outcomes sent to a tab"),
    "clicktrace.notifications.replayed": (
        "counter", "{notification}", "Notifications replayed to a resuming socket"),
    "clicktrace.click.duration": ("histogram", "s", "Click to settled, in the browser"),
    "clicktrace.accept_to_publish.duration": (
        "histogram", "s", "Command accepted (envelope created) to published on the bus"),
    "clicktrace.publish_to_consume.duration": (
        "histogram", "s", "Published to delivered to a handler"),
    "clicktrace.consume_to_notify.duration": (
        "histogram", "s", "Delivered to a handler to the outcome sent to the tab"),
    "messaging.process.duration": ("histogram", "s", "Handler run time per attempt"),
    "clicktrace.step.duration": ("histogram", "s", "step() run time"),
    "clicktrace.attempts": (
        "histogram", "{attempt}", "Attempts a message took to be acked or dead-lettered"),
}

_OUTCOME = "clicktrace.outcome"
_Handle = Callable[[Entry], None]

# The delivery the current task is handling (its "delivered" entry): consume→notify is timed
# from it, and step() takes its attempt from it.
_delivery: ContextVar[Entry | None] = ContextVar("clicktrace_delivery", default=None)


def current_delivery() -> Entry | None:
    """The ``delivered`` entry of the message the current task is handling, if any."""
    return _delivery.get()


def _attrs(key: str, *values: str) -> dict[str | None, dict[str, str]]:
    """One frozen-by-convention attribute dict per known value; ``None`` and unknown values
    share ``_OTHER``, so an odd outcome costs no allocation and no new series."""
    table: dict[str | None, dict[str, str]] = {v: {key: v} for v in values}
    table[None] = {key: "_OTHER"}
    return table


def _build(meter: Meter) -> dict[str, _Handle]:
    counters: dict[str, Counter] = {}
    histograms: dict[str, Histogram] = {}
    for name, (kind, unit, description) in INSTRUMENTS.items():
        if kind == "counter":
            counters[name] = meter.create_counter(name, unit, description)
        else:
            bounds = _ATTEMPTS if unit == "{attempt}" else _SECONDS
            histograms[name] = meter.create_histogram(
                name, unit, description, explicit_bucket_boundaries_advisory=bounds)

    def count(name: str, attributes: dict[str, str]) -> Callable[[], None]:
        add = counters[name].add

        def handle() -> None:
            add(1, attributes)

        return handle

    commands = counters["clicktrace.commands"].add
    accepted, refused = {_OUTCOME: "accepted"}, {_OUTCOME: "refused"}
    settled_count = counters["clicktrace.clicks.settled"].add
    settled_attrs = _attrs(_OUTCOME, "confirmed", "rejected", "timed_out")
    click_time = histograms["clicktrace.click.duration"].record
    sent = count("messaging.client.sent.messages", {"messaging.operation.name": "send"})
    accept_to_publish = histograms["clicktrace.accept_to_publish.duration"].record
    consumed = count("messaging.client.consumed.messages", {"messaging.operation.name": "process"})
    publish_to_consume = histograms["clicktrace.publish_to_consume.duration"].record
    none: dict[str, str] = {}
    retried = count("clicktrace.messages.retried", none)
    dead = count("clicktrace.messages.dead_lettered", none)
    process = histograms["messaging.process.duration"].record
    ok_process = {"messaging.operation.name": "process"}
    failed_process = {"messaging.operation.name": "process", "error.type": "_OTHER"}
    attempts = histograms["clicktrace.attempts"].record
    acked_attempts, dead_attempts = {_OUTCOME: "acked"}, {_OUTCOME: "dead_lettered"}
    notified_count = counters["clicktrace.notifications.sent"].add
    notified_attrs = _attrs(_OUTCOME, "confirmed", "rejected", "progress")
    consume_to_notify = histograms["clicktrace.consume_to_notify.duration"].record
    replayed = count("clicktrace.notifications.replayed", none)
    step_time = histograms["clicktrace.step.duration"].record
    step_attrs: dict[tuple[str | None, str | None], dict[str, str]] = {}
    set_delivery = _delivery.set
    get_delivery = _delivery.get

    def on_accepted(entry: Entry) -> None:
        commands(1, accepted)

    def on_refused(entry: Entry) -> None:
        commands(1, refused)

    def on_settled(entry: Entry) -> None:
        attributes = settled_attrs.get(entry.outcome) or settled_attrs[None]
        settled_count(1, attributes)
        if entry.duration_ms is not None:
            click_time(max(entry.duration_ms, 0.0) / 1000.0, attributes)

    def on_published(entry: Entry) -> None:
        sent()
        if entry.duration_ms is not None:
            accept_to_publish(max(entry.duration_ms, 0.0) / 1000.0, none)

    def on_delivered(entry: Entry) -> None:
        consumed()
        set_delivery(entry)
        if entry.duration_ms is not None:
            publish_to_consume(max(entry.duration_ms, 0.0) / 1000.0, none)

    def on_acked(entry: Entry) -> None:
        if entry.duration_ms is not None:
            process(max(entry.duration_ms, 0.0) / 1000.0, ok_process)
        if entry.attempt is not None:
            attempts(entry.attempt, acked_attempts)

    def on_retried(entry: Entry) -> None:
        retried()
        if entry.duration_ms is not None:
            process(max(entry.duration_ms, 0.0) / 1000.0, failed_process)

    def on_dead_lettered(entry: Entry) -> None:
        dead()
        if entry.duration_ms is not None:
            process(max(entry.duration_ms, 0.0) / 1000.0, failed_process)
        if entry.attempt is not None:
            attempts(entry.attempt, dead_attempts)

    def on_notified(entry: Entry) -> None:
        notified_count(1, notified_attrs.get(entry.outcome) or notified_attrs[None])
        ms = entry.duration_ms
        if ms is None:
            delivery = get_delivery()
            if delivery is None or delivery.correlation_id != entry.correlation_id:
                return
            ms = entry.at - delivery.at
        consume_to_notify(max(ms, 0.0) / 1000.0, none)

    def on_replayed(entry: Entry) -> None:
        replayed()

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
        "accepted": on_accepted, "refused": on_refused, "settled": on_settled,
        "published": on_published, "delivered": on_delivered, "acked": on_acked,
        "retried": on_retried, "dead_lettered": on_dead_lettered, "notified": on_notified,
        "replayed": on_replayed, "step": on_step,
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
