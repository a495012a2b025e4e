"""Ports and broker names for test runs that share a machine (and its brokers).

Binding port 0 and closing the socket leaves a window in which another run, or another server
of the same run, can be handed the same port; and two runs that name their topics alike read
each other's messages. So:

- :func:`free_port` takes a port from the range in ``CLICKTRACE_TEST_PORTS`` (``"20000-29999"``)
  and holds an advisory lock on it (``flock`` on a file in the temp dir) until the process ends,
  so no other run using the same range takes it; the kernel drops the lock when the process
  dies, even under SIGKILL. Without the variable the OS picks, as before.
- :func:`unique_name` prefixes a name with this run's prefix (``CLICKTRACE_TEST_PREFIX``, or one
  made once per process), so every topic, stream, key and channel a run creates is its own.
"""

from __future__ import annotations

import fcntl
import os
import random
import re
import socket
import tempfile
from pathlib import Path

from clicktrace.ids import new_id

__all__ = ["PORTS_ENV", "PREFIX_ENV", "free_port", "run_prefix", "unique_name"]

PORTS_ENV = "CLICKTRACE_TEST_PORTS"
PREFIX_ENV = "CLICKTRACE_TEST_PREFIX"
_LOCKS = Path(tempfile.gettempdir()) / "clicktrace-test-ports"
_held: dict[int, int] = {}  # port -> the fd holding its lock, for the life of the process
_prefix = os.environ.get(PREFIX_ENV) or f"ct{new_id()[-6:].lower()}"


def _range() -> range | None:
    spec = os.environ.get(PORTS_ENV, "").strip()
    if not spec:
        return None
    low, sep, high = spec.partition("-")
    try:
        first, last = int(low), int(high if sep else low)
    except ValueError:
        message = f"{PORTS_ENV} must read FIRST-LAST, e.g. 20000-29999, not {spec!r}"
        raise ValueError(message) from None
    if not 1024 <= first <= last <= 65535:
        raise ValueError(f"{PORTS_ENV}={spec!r} is not a range within 1024-65535")
    return range(first, last + 1)


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _lock(port: int) -> bool:
    _LOCKS.mkdir(exist_ok=True)
    fd = os.open(_LOCKS / f"{port}.lock", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    _held[port] = fd
    return True


def free_port() -> int:
    """A loopback TCP port nobody is listening on and no other run holds."""
    ports = _range()
    if ports is None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])
    start = random.randrange(len(ports))  # runs start apart, so they rarely probe the same port
    for i in range(len(ports)):
        port = ports[(start + i) % len(ports)]
        if port in _held or not _lock(port):
            continue
        if _bindable(port):
            return port
        # Someone outside the range's users listens there: keep the lock so we skip it.
    raise RuntimeError(f"no free port left in {PORTS_ENV}={os.environ[PORTS_ENV]}")


def run_prefix() -> str:
    """This run's prefix (``CLICKTRACE_TEST_PREFIX``, or made once per process)."""
    return _prefix


def unique_name(stem: str = "", *, sql: bool = False) -> str:
    """A broker or database name nobody else uses: the run's prefix, ``stem``, a fresh id
    (lower case, which every broker accepts), e.g. ``ct3k9x1q-todos-01j...``.

    ``sql=True`` joins them with ``_`` instead (``ct3k9x1q_outbox_01j...``), so the name is a
    bare SQL identifier: a PostgreSQL schema or table, a SQLite table.
    """
    if not sql:
        return f"{_prefix}-{stem}-{new_id().lower()}" if stem else f"{_prefix}-{new_id().lower()}"
    prefix = re.sub(r"[^a-z0-9_]", "_", _prefix.lower())
    if not prefix[:1].isalpha():
        prefix = f"ct_{prefix}"  # an identifier starts with a letter
    parts = [prefix, re.sub(r"[^a-z0-9_]", "_", stem.lower()), new_id().lower()]
    return "_".join(part for part in parts if part)
