"""Journal entries to metrics: each stage maps, once, to a small function holding its
instruments and precomputed attribute dicts, since :func:`~clicktrace.metrics.observe` runs on
every entry (every request, every message).
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar

from opentelemetry.metrics import Meter

from clicktrace.journal import Entry
from clicktrace.metrics._instruments import histograms, tally

__all__ = [
    "BROWSER_OUTCOMES",
    "Handle",
    "browser_counter",
    "command_counter",
    "current_delivery",
    "handlers",
]

_MAX_STEP_NAMES = 256  # distinct step names kept as attributes; others are "_OTHER"
_OUTCOME = "clicktrace.outcome"
Handle = Callable[[Entry], None]
# What became of a browser stage offered to the journal (clicktrace.ingest._admission):
# recorded as sent, recorded with its time clamped, or why it was dropped.
BROWSER_OUTCOMES = (
    "recorded",
    "clamped",
    "duplicate",
    "unknown_click",
    "other_client",
    "anonymous",
    "per_click_cap",
    "client_budget",
    "journal_unavailable",
    "too_many_clicks",
)

# The delivery the current task is handling (its "delivered" entry): consume→notify is timed
# from it, and step() takes its attempt from it.
_delivery: ContextVar[Entry | None] = ContextVar("clicktrace_delivery", default=None)


def current_delivery() -> Entry | None:
    """The ``delivered`` entry of the message the current task is handling, if any."""
    return _delivery.get()


def _outcomes(*values: str) -> tuple[dict[str | None, int], tuple[dict[str, str], ...]]:
    """Slot per known outcome, ``_OTHER`` last (also for ``None``): an odd outcome costs no
    allocation and no new series."""
    index: dict[str | None, int] = {v: i for i, v in enumerate(values)}
    return index, (*({_OUTCOME: v} for v in values), {_OUTCOME: "_OTHER"})


def browser_counter(meter: Meter) -> Callable[[str, int], None]:
    """``count(outcome, n)`` on ``clicktrace.browser.stages`` created on ``meter``."""
    index, attributes = _outcomes(*BROWSER_OUTCOMES)
    counts = tally(meter, "clicktrace.browser.stages", *attributes)
    other = len(attributes) - 1

    def count(outcome: str, n: int) -> None:
        counts[index.get(outcome, other)] += n

    return count


def command_counter(meter: Meter) -> list[int]:
    """``clicktrace.commands`` created on ``meter``: the counts of accepted (0) and refused (1)
    commands, for the caller to increment."""
    return tally(meter, "clicktrace.commands", {_OUTCOME: "accepted"}, {_OUTCOME: "refused"})


def handlers(meter: Meter, commands: list[int] | None = None) -> dict[str, Handle]:
    """The handler of every stage that has a metric, on instruments created on ``meter``
    (``commands``: :func:`command_counter`'s counts on it, made here when not given)."""
    histogram = histograms(meter)
    none: dict[str, str] = {}
    if commands is None:
        commands = command_counter(meter)
    settled_index, settled_attrs = _outcomes("confirmed", "rejected", "timed_out")
    settled = tally(meter, "clicktrace.clicks.settled", *settled_attrs)
    settled_other = len(settled_attrs) - 1
    click_time = histogram["clicktrace.click.duration"].record
    sent = tally(meter, "messaging.client.sent.messages", {"messaging.operation.name": "send"})
    accept_to_publish = histogram["clicktrace.accept_to_publish.duration"].record
    consumed = tally(
        meter, "messaging.client.consumed.messages", {"messaging.operation.name": "process"}
    )
    publish_to_consume = histogram["clicktrace.publish_to_consume.duration"].record
    retried = tally(meter, "clicktrace.messages.retried", none)
    dead = tally(meter, "clicktrace.messages.dead_lettered", none)
    process = histogram["messaging.process.duration"].record
    ok_process = {"messaging.operation.name": "process"}
    failed_process = {"messaging.operation.name": "process", "error.type": "_OTHER"}
    attempts = histogram["clicktrace.attempts"].record
    acked_attempts, dead_attempts = {_OUTCOME: "acked"}, {_OUTCOME: "dead_lettered"}
    notified_index, notified_attrs = _outcomes("confirmed", "rejected", "progress")
    notified = tally(meter, "clicktrace.notifications.sent", *notified_attrs)
    notified_other = len(notified_attrs) - 1
    consume_to_notify = histogram["clicktrace.consume_to_notify.duration"].record
    replayed = tally(meter, "clicktrace.notifications.replayed", none)
    step_time = histogram["clicktrace.step.duration"].record
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
