"""Fixtures for journal tests: a process journal on the memory ring, undone after each test;
a TCP port that hangs (a store that is slow to the point of never answering)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest

from clicktrace import journal as journal_api
from clicktrace.journal import Journal, MemoryStore
from clicktrace.testing import free_port


@pytest.fixture
def journal() -> Iterator[Journal]:
    j = Journal(MemoryStore())
    previous = journal_api.use(j)
    yield j
    journal_api.use(previous)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP port that accepts connections and never answers: a store that hangs."""
    port = free_port()
    server = socket.create_server(("127.0.0.1", port))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                held.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield port
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()
