"""What :func:`clicktrace.journal._record` puts in an entry: the sampled flag of the current
span, unless the recording site names another trace or says so."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON

from clicktrace.journal import Entry, record, use

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
