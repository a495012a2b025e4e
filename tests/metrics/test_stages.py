"""clicktrace.metrics._stages: every stage counted or timed on the instrument the docs name."""

from __future__ import annotations

import subprocess
import sys

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from clicktrace import metrics
from clicktrace.ids import new_id
from clicktrace.journal import Entry, record
from clicktrace.journal._entry import STAGES
from clicktrace.metrics._stages import current_delivery

from .readings import points, units


def test_commands_are_counted_by_outcome(reader: InMemoryMetricReader) -> None:
    cid = new_id()
    record("accepted", correlation_id=cid)
    record("accepted", correlation_id=cid)
    record("refused", correlation_id=cid, outcome="invalid_body")
    got = dict((a["clicktrace.outcome"], v) for a, v in points(reader)["clicktrace.commands"])
    assert got == {"accepted": 2, "refused": 1}


def test_settled_clicks_count_and_time_by_outcome(reader: InMemoryMetricReader) -> None:
    cid = new_id()
    record("settled", correlation_id=cid, outcome="confirmed", duration_ms=250.0)
    record("settled", correlation_id=cid, outcome="rejected", duration_ms=1500.0)
    record("settled", correlation_id=cid, outcome="timed_out", duration_ms=-3.0)  # clock skew
    record("settled", correlation_id=cid, outcome="<script>")  # unknown: no new series
    got = points(reader)
    counted = {a["clicktrace.outcome"]: v for a, v in got["clicktrace.clicks.settled"]}
    assert counted == {"confirmed": 1, "rejected": 1, "timed_out": 1, "_OTHER": 1}
    timed = {a["clicktrace.outcome"]: p for a, p in got["clicktrace.click.duration"]}
    assert timed["confirmed"].sum == pytest.approx(0.25)
    assert timed["rejected"].sum == pytest.approx(1.5)
    assert timed["timed_out"].sum == 0.0  # never negative
    assert units(reader)["clicktrace.click.duration"] == "s"


def test_the_message_path_uses_the_messaging_conventions(reader: InMemoryMetricReader) -> None:
    cid = new_id()
    record("published", correlation_id=cid, duration_ms=40.0)
    record("delivered", correlation_id=cid, attempt=1, duration_ms=5.0)
    record("retried", correlation_id=cid, attempt=1, duration_ms=2.0)
    record("delivered", correlation_id=cid, attempt=2, duration_ms=900.0)
    record("acked", correlation_id=cid, attempt=2, duration_ms=3.0)
    record("delivered", correlation_id=cid, attempt=1)
    record("dead_lettered", correlation_id=cid, attempt=5)
    got = points(reader)
    assert got["messaging.client.sent.messages"] == [({"messaging.operation.name": "send"}, 1)]
    assert got["messaging.client.consumed.messages"] == [
        ({"messaging.operation.name": "process"}, 3)
    ]
    assert got["clicktrace.messages.retried"] == [({}, 1)]
    assert got["clicktrace.messages.dead_lettered"] == [({}, 1)]
    ((_, published),) = got["clicktrace.accept_to_publish.duration"]
    assert published.sum == pytest.approx(0.04)
    ((_, transit),) = got["clicktrace.publish_to_consume.duration"]
    assert (transit.count, transit.sum) == (2, pytest.approx(0.905))
    process = {a.get("error.type"): p for a, p in got["messaging.process.duration"]}
    assert process[None].sum == pytest.approx(0.003)
    assert process["_OTHER"].sum == pytest.approx(0.002)
    attempts = {a["clicktrace.outcome"]: p for a, p in got["clicktrace.attempts"]}
    assert (attempts["acked"].sum, attempts["dead_lettered"].sum) == (2, 5)
    assert units(reader)["messaging.process.duration"] == "s"
    assert units(reader)["messaging.client.sent.messages"] == "{message}"


def test_consume_to_notify_is_timed_from_the_delivery_in_hand(
    reader: InMemoryMetricReader,
) -> None:
    cid, other = new_id(), new_id()
    metrics.observe(Entry(correlation_id=cid, stage="delivered", at=1000.0, attempt=1))
    metrics.observe(Entry(correlation_id=cid, stage="notified", at=1120.0, outcome="confirmed"))
    # A notification for another click than the delivery in hand is not timed from it.
    metrics.observe(Entry(correlation_id=other, stage="notified", at=9000.0, outcome="rejected"))
    metrics.observe(Entry(correlation_id=cid, stage="replayed", at=9100.0))
    got = points(reader)
    ((_, hop),) = got["clicktrace.consume_to_notify.duration"]
    assert (hop.count, hop.sum) == (1, pytest.approx(0.12))
    sent = {a["clicktrace.outcome"]: v for a, v in got["clicktrace.notifications.sent"]}
    assert sent == {"confirmed": 1, "rejected": 1}
    assert got["clicktrace.notifications.replayed"] == [({}, 1)]
    assert current_delivery() is not None


def test_step_names_are_attributes_up_to_a_bound(reader: InMemoryMetricReader) -> None:
    cid = new_id()
    for i in range(300):
        record("step", correlation_id=cid, detail=f"step {i}", outcome="ok", duration_ms=1.0)
    got = points(reader)["clicktrace.step.duration"]
    names = {a["step.name"] for a, _ in got}
    assert len(names) == 257 and "_OTHER" in names
    other = next(p for a, p in got if a["step.name"] == "_OTHER")
    assert other.count == 300 - 256


def test_every_stage_handled_is_one_the_sdk_records() -> None:
    handled = {
        "accepted",
        "refused",
        "settled",
        "published",
        "delivered",
        "acked",
        "retried",
        "dead_lettered",
        "notified",
        "replayed",
        "step",
    }
    assert handled <= set(STAGES)


def test_without_a_meter_provider_observing_does_nothing_and_never_raises() -> None:
    for stage in (*STAGES, "an app's own stage"):
        metrics.observe(
            Entry(
                correlation_id=new_id(),
                stage=stage,
                at=0.0,
                duration_ms=1.0,
                attempt=1,
                outcome="x",
                detail="y",
            )
        )


def test_the_edges_command_count_shares_the_counter(reader: InMemoryMetricReader) -> None:
    metrics.count_command(False)
    metrics.count_command(True)
    record("accepted", correlation_id=new_id())
    assert sorted(points(reader)["clicktrace.commands"], key=lambda p: p[1]) == [
        ({"clicktrace.outcome": "refused"}, 1),
        ({"clicktrace.outcome": "accepted"}, 2),
    ]


def test_active_only_with_a_meter_provider_that_records() -> None:
    """The API's proxy (nothing set) and its no-op are not read; a provider given or set
    globally is. Run in a fresh process: the global provider can be set once."""
    code = (
        "from opentelemetry.metrics import NoOpMeterProvider, set_meter_provider\n"
        "from opentelemetry.sdk.metrics import MeterProvider\n"
        "from clicktrace import metrics\n"
        "seen = [metrics.active()]\n"
        "metrics.use(NoOpMeterProvider()); seen.append(metrics.active())\n"
        "metrics.use(MeterProvider()); seen.append(metrics.active())\n"
        "metrics.use(None); seen.append(metrics.active())\n"
        "set_meter_provider(MeterProvider()); seen.append(metrics.active())\n"
        "print(seen)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[False, False, True, False, True]"
