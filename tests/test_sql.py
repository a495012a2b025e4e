"""The identifiers and prune settings every SQL store checks the same way."""

from __future__ import annotations

import pytest

from clicktrace._sql import TableStats, check_prune_every, check_table


@pytest.mark.parametrize("name", ["clicktrace_claims", "_t", "T1", "a" * 63])
def test_a_plain_identifier_is_a_table_name(name: str) -> None:
    assert check_table(name) == name


@pytest.mark.parametrize("name", ["", "1abc", "a b", "no; drop", "a-b", "a" * 64, "é", 7])
def test_anything_else_is_refused(name: object) -> None:
    with pytest.raises(ValueError):
        check_table(name)  # type: ignore[arg-type]


def test_prune_every_is_a_positive_int() -> None:
    assert check_prune_every(1) == 1
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError):
            check_prune_every(bad)  # type: ignore[arg-type]


def test_table_stats_say_nothing_of_the_size_unless_known() -> None:
    assert TableStats(0, None).bytes is None
