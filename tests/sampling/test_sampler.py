"""ClickSampler: the click's decision is followed; the ratio decides only without one."""

from __future__ import annotations

import subprocess
import sys

import pytest
from opentelemetry.context import Context, set_value
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

from clicktrace.sampling import ClickSampler
from clicktrace.sampling._decision import DECISION, decided

LOW = 1  # a trace id every ratio > 0 samples (TraceIdRatioBased compares the low 64 bits)
HIGH = (1 << 64) - 1  # one only ratio 1 samples


def parent(sampled: bool) -> Context:
    sc = SpanContext(0xABC, 0xDEF, True, TraceFlags(0x03 if sampled else 0x02))
    return set_span_in_context(NonRecordingSpan(sc))


@pytest.mark.parametrize("ratio", [0.0, 0.1, 1.0])
def test_a_parent_decides_whatever_the_ratio(ratio: float) -> None:
    s = ClickSampler(ratio)
    assert s.should_sample(parent(True), HIGH, "x").decision is Decision.RECORD_AND_SAMPLE
    assert s.should_sample(parent(False), LOW, "x").decision is Decision.DROP


@pytest.mark.parametrize("ratio", [0.0, 0.1, 1.0])
def test_a_new_trace_follows_the_decision_it_carries(ratio: float) -> None:
    s = ClickSampler(ratio)
    keep, drop = set_value(DECISION, True, Context()), set_value(DECISION, False, Context())
    assert s.should_sample(keep, HIGH, "x").decision is Decision.RECORD_AND_SAMPLE
    assert s.should_sample(drop, LOW, "x").decision is Decision.DROP
    assert decided(keep) is True and decided(drop) is False and decided(Context()) is None


def test_without_any_decision_the_ratio_decides_by_trace_id() -> None:
    assert ClickSampler(0.1).should_sample(None, LOW, "x").decision is Decision.RECORD_AND_SAMPLE
    assert ClickSampler(0.1).should_sample(None, HIGH, "x").decision is Decision.DROP
    assert ClickSampler(0.0).should_sample(None, LOW, "x").decision is Decision.DROP
    assert ClickSampler(1.0).should_sample(None, HIGH, "x").decision is Decision.RECORD_AND_SAMPLE
    provider = TracerProvider(sampler=ClickSampler(0.0))
    assert not provider.get_tracer("t").start_span("root").is_recording()


@pytest.mark.parametrize("bad", [-0.1, 1.1, True, "0.5", float("nan")])
def test_a_ratio_outside_zero_to_one_is_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        ClickSampler(bad)  # type: ignore[arg-type]


def test_without_the_sdk_the_bus_still_imports_and_the_sampler_names_the_extra() -> None:
    script = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.startswith('opentelemetry.sdk'):\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import clicktrace.bus, clicktrace.sampling\n"
        "try:\n"
        "    clicktrace.sampling.sampler(0.5)\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "opentelemetry-sdk is not installed: pip install 'clicktrace[sdk]'"
