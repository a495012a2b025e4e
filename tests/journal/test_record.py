"""What :func:`clicktrace.journal._record` puts in an entry: the sampled flag of the current
span, unless the recording site names another trace or says so; whether recording is on at
all; the edge's command entry, built from the request's parts when the journal writes it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import pytest
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON
from opentelemetry.trace import INVALID_SPAN_CONTEXT, SpanContext, TraceFlags

from clicktrace import metrics
from clicktrace.context import ClickContext
from clicktrace.journal import Entry, Journal, MemoryStore, record, use
from clicktrace.journal._record import command, enabled

CID = "01JD8X3Q7E8W5V4T2N9R6M0K1A"
T2 = "b" * 32


class Kept:
    def __init__(self) -> None:
        self.entries: list[Entry] = []

    def put(self, entry: Entry) -> None:
        self.entries.append(entry)


@pytest.mark.parametrize("sampler", [ALWAYS_ON, ALWAYS_OFF], ids=["sampled", "unsampled"])
def test_record_takes_the_flag_of_the_current_span_unless_told(sampler: Any) -> None:
    kept = Kept()
    previous = use(kept)
    try:
        tracer = TracerProvider(sampler=sampler).get_tracer("t")
        with tracer.start_as_current_span("work") as span:
            trace_id = f"{span.get_span_context().trace_id:032x}"
            record("accepted", correlation_id=CID)
            record("received", correlation_id=CID, trace_id=trace_id)  # the same trace
            record("clicked", correlation_id=CID, trace_id=T2)  # another trace: unknown
            record("relayed", correlation_id=CID, trace_id=T2, sampled=False)
    finally:
        use(previous)
    flag = sampler is ALWAYS_ON
    assert [x.sampled for x in kept.entries] == [flag, flag, None, False]


def test_recording_loads_no_http_stack() -> None:
    """Every bus message and request records through ``clicktrace.journal``: importing it and
    recording (which loads the metrics) loads no Starlette and no web or edge module; the
    route is the face's lazy name."""
    code = (
        "import sys\n"
        "from clicktrace.journal import record\n"
        "record('step', correlation_id='01JD8X3Q7E8W5V4T2N9R6M0K1A')\n"
        "import clicktrace.metrics\n"
        "print(sorted(m for m in sys.modules\n"
        "             if m.startswith(('starlette', 'clicktrace.asgi', 'clicktrace.web'))))\n"
        "from clicktrace.journal import journal_route\n"
        "print('starlette' in sys.modules)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.split("\n")[:2] == ["[]", "True"], run.stdout + run.stderr


def test_enabled_says_whether_a_journal_or_a_meter_provider_would_keep_an_entry() -> None:
    from opentelemetry.sdk.metrics import MeterProvider

    from clicktrace import metrics
    from clicktrace.journal._record import enabled

    assert not enabled()  # the tests set no global MeterProvider
    previous = use(Kept())
    try:
        assert enabled()
    finally:
        use(previous)
    assert not enabled()
    metrics.use(MeterProvider())
    try:
        assert enabled()
    finally:
        metrics.use(None)
    assert not enabled()


@pytest.mark.parametrize("how", ["global", "environment"])
def test_a_meter_provider_set_globally_or_named_in_the_environment_counts(how: str) -> None:
    # Once per process (the API refuses a second global provider): a process of its own.
    code = (
        "from clicktrace.journal._record import enabled\n"
        "print(enabled())\n"
        "from opentelemetry.metrics import set_meter_provider\n"
        "from opentelemetry.sdk.metrics import MeterProvider\n"
        "set_meter_provider(MeterProvider())\n"
        "print(enabled())\n"
    )
    env = None
    if how == "environment":
        import os

        env = {**os.environ, "OTEL_PYTHON_METER_PROVIDER": "sdk_meter_provider"}
        code = "from clicktrace.journal._record import enabled\nprint(enabled())\n"
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    expected = ["False", "True"] if how == "global" else ["True"]
    assert run.stdout.split() == expected, run.stdout + run.stderr


def test_enabled_only_with_a_journal_or_a_meter_provider() -> None:
    metrics.use(NoOpMeterProvider())
    try:
        assert not enabled()
        previous = use(Kept())
        try:
            assert enabled()
        finally:
            use(previous)
        metrics.use(MeterProvider())
        assert enabled()
    finally:
        metrics.use(None)


def test_a_command_entry_is_built_from_the_requests_parts() -> None:
    kept = Kept()  # a sink without put_later: built at once
    previous = use(kept)
    click = ClickContext(CID, None, "01JD8X3Q7E8W5V4T2N9R6M0K1C", 1764000000000)
    span = SpanContext(0xAB, 0xCD, False, TraceFlags(1))
    try:
        command(202, "POST", "/api/x", click, span)
        command(401, "PUT", "/api/y", click, INVALID_SPAN_CONTEXT)
    finally:
        use(previous)
    accepted, refused = kept.entries
    assert (accepted.stage, accepted.outcome, accepted.detail) == (
        "accepted",
        "202",
        "POST /api/x 202",
    )
    assert (accepted.trace_id, accepted.span_id, accepted.sampled) == (
        f"{0xAB:032x}",
        f"{0xCD:016x}",
        True,
    )
    assert (accepted.client_id, accepted.deadline_ms) == (click.client_id, click.deadline_ms)
    assert (refused.stage, refused.trace_id, refused.sampled) == ("refused", None, None)


async def test_a_command_entry_is_built_when_the_journal_writes_it() -> None:
    journal = Journal(MemoryStore())
    previous = use(journal)
    try:
        command(202, "POST", "/api/x", ClickContext(CID), INVALID_SPAN_CONTEXT)
        assert journal.queued == 1 and len(journal.store) == 0  # type: ignore[arg-type]
        await asyncio.sleep(0)  # the loop's next turn writes the ring
        assert journal.queued == 0
        (entry,) = await journal.read(CID)
    finally:
        use(previous)
    assert (entry.stage, entry.correlation_id) == ("accepted", CID)
