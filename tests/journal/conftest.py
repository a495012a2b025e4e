"""Fixtures for journal tests: a process journal on the memory ring, undone after each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from clicktrace import journal as journal_api
from clicktrace.journal import Journal, MemoryStore


@pytest.fixture
def journal() -> Iterator[Journal]:
    j = Journal(MemoryStore())
    previous = journal_api.use(j)
    yield j
    journal_api.use(previous)
