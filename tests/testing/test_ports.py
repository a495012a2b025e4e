"""clicktrace.testing._ports: ports from the configured range, never one another run holds,
and names that carry the run's prefix."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from clicktrace.testing import _ports as ports
from clicktrace.testing._ports import PORTS_ENV, free_port, run_prefix, unique_name

# Outside the Makefile's default range, so a concurrent `make test` never holds these.
RANGE = "30990-30992"


def test_ports_come_from_the_range_and_are_not_handed_out_twice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PORTS_ENV, RANGE)
    taken = {free_port() for _ in range(3)}
    assert taken == {30990, 30991, 30992}
    with pytest.raises(RuntimeError, match=PORTS_ENV):
        free_port()


def test_a_port_another_process_holds_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    code = (
        "import sys; from clicktrace.testing._ports import free_port; "
        "print(free_port(), flush=True); sys.stdin.read()"
    )
    env_range = "30995-30995"
    other = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, PORTS_ENV: env_range},
        text=True,
    )
    try:
        assert other.stdout is not None
        assert other.stdout.readline().strip() == "30995"
        monkeypatch.setenv(PORTS_ENV, env_range)
        with pytest.raises(RuntimeError):
            free_port()
    finally:
        other.communicate("")


@pytest.mark.parametrize("spec", ["20000", "a-b", "80-90", "30000-20000"])
def test_a_malformed_range_is_refused(monkeypatch: pytest.MonkeyPatch, spec: str) -> None:
    monkeypatch.setenv(PORTS_ENV, spec)
    if spec == "20000":  # one port is a range too
        assert ports._range() == range(20000, 20001)
        return
    with pytest.raises(ValueError, match=PORTS_ENV):
        free_port()


def test_names_carry_the_run_prefix_and_differ() -> None:
    a, b = unique_name("todos"), unique_name("todos")
    assert a != b
    assert a.startswith(f"{run_prefix()}-todos-")
    assert a == a.lower()


@pytest.mark.parametrize("prefix", ["ct3k9x1q", "CI-run.7", "7up"])
def test_sql_names_are_bare_identifiers_with_the_run_prefix(
    monkeypatch: pytest.MonkeyPatch, prefix: str
) -> None:
    monkeypatch.setattr(ports, "_prefix", prefix)
    a, b = unique_name("outbox", sql=True), unique_name("outbox", sql=True)
    assert a != b
    assert re.fullmatch(r"[a-z][a-z0-9_]*", a), a
    assert len(a) <= 63  # PostgreSQL truncates longer identifiers
    assert "_outbox_" in a and re.sub(r"[^a-z0-9_]", "_", prefix.lower()) in a
    assert unique_name(sql=True).count("_") >= 1
