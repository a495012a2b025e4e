from __future__ import annotations

import logging

import pytest

from clicktrace.notify.quiet_log import QuietLog


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_one_line_per_interval_and_a_count_of_the_rest(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    quiet = QuietLog(logging.getLogger("test.quiet"), 10.0, clock=clock)
    with caplog.at_level(logging.WARNING, "test.quiet"):
        for _ in range(2000):
            quiet.warn("bad frame", "203.0.113.7")
        clock.now = 10.0
        quiet.warn("bad frame", "203.0.113.7\n" + "x" * 500)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "clicktrace: bad frame from '203.0.113.7'",
        "clicktrace: bad frame from '203.0.113.7\\n"
        + "x" * 52
        + "'; 1999 more since the last line",
    ]
    assert not any(r.exc_info for r in caplog.records)
