"""The click's decision carried in a context, and the server's ratio from the standard
environment variables for a click that arrives without one."""

from __future__ import annotations

import logging

import pytest
from opentelemetry.context import Context, set_value

from clicktrace.sampling import sampler
from clicktrace.sampling._decision import DECISION, decided, ratio_from_env


def test_a_context_carries_the_decision_only_as_a_bool() -> None:
    assert decided(set_value(DECISION, True, Context())) is True
    assert decided(set_value(DECISION, False, Context())) is False
    assert decided(set_value(DECISION, "yes", Context())) is None
    assert decided(Context()) is None


@pytest.mark.parametrize(
    ("name", "arg", "ratio"),
    [
        (None, None, 1.0),
        ("always_off", None, 0.0),
        ("parentbased_always_off", "0.7", 0.0),
        ("always_on", None, 1.0),
        ("traceidratio", "0.25", 0.25),
        ("parentbased_traceidratio", "0.1", 0.1),
        ("PARENTBASED_TRACEIDRATIO", " 0.5 ", 0.5),
    ],
)
def test_the_standard_environment_variables_set_the_ratio(
    monkeypatch: pytest.MonkeyPatch,
    name: str | None,
    arg: str | None,
    ratio: float,
) -> None:
    for key, value in (("OTEL_TRACES_SAMPLER", name), ("OTEL_TRACES_SAMPLER_ARG", arg)):
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    assert ratio_from_env() == ratio
    assert sampler().ratio == ratio
    assert sampler(0.3).ratio == 0.3  # the argument wins


@pytest.mark.parametrize(
    ("name", "arg"),
    [
        ("jaeger_remote", None),
        ("traceidratio", "lots"),
        ("traceidratio", "1.5"),
        ("traceidratio", "nan"),
        ("traceidratio", "-0.1"),
    ],
)
def test_an_environment_it_cannot_read_samples_everything_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    name: str,
    arg: str | None,
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", name)
    if arg is not None:
        monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", arg)
    with caplog.at_level(logging.WARNING, "clicktrace.sampling"):
        assert ratio_from_env() == 1.0
    assert caplog.records
