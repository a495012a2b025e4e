"""Warnings about hostile input, rate-limited: an attacker must not be able to fill the disk.

One short line per ``interval`` at most, naming what happened and the peer; the occurrences
in between are counted and reported on the next line. Never a traceback, never the input.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["QuietLog"]

_MAX_PEER = 64


class QuietLog:
    def __init__(
        self,
        logger: logging.Logger,
        interval: float = 10.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._quiet_until: float | None = None
        self._suppressed = 0

    def warn(self, what: str, peer: str) -> None:
        """``what`` is the SDK's own text; ``peer`` is escaped and cut."""
        now = self._clock()
        if self._quiet_until is not None and now < self._quiet_until:
            self._suppressed += 1
            return
        more = f"; {self._suppressed} more since the last line" if self._suppressed else ""
        self._logger.warning("clicktrace: %s from %s%s", what, ascii(peer[:_MAX_PEER]), more)
        self._suppressed = 0
        self._quiet_until = now + self._interval
