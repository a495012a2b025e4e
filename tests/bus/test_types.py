"""Backoff and name checks."""

from __future__ import annotations

import pytest

from clicktrace.bus import Backoff
from clicktrace.bus._types import check_name


def test_backoff_is_exponential_and_capped() -> None:
    backoff = Backoff(initial=0.1, maximum=1.0, multiplier=2.0)
    assert [backoff.delay(n) for n in range(1, 7)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    with pytest.raises(ValueError):
        Backoff(initial=2.0, maximum=1.0)
    with pytest.raises(ValueError):
        Backoff(multiplier=0.5)


@pytest.mark.parametrize("name", ["products", "a.b-c_d", "ct-01m80j", "x" * 200])
def test_good_names(name: str) -> None:
    assert check_name("topic", name) == name


@pytest.mark.parametrize("name", ["", "a b", "a:b", "a..b", "a.", ".a", "a*", "a>", "x" * 201])
def test_bad_names(name: str) -> None:
    with pytest.raises(ValueError):
        check_name("topic", name)


def test_names_must_be_strings() -> None:
    with pytest.raises(TypeError):
        check_name("group", 3)
