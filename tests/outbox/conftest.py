"""Fixtures for outbox tests: a private tracer provider and a PostgreSQL connection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from clicktrace.ids import new_id

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    return tp


@pytest.fixture
def table() -> str:
    return f"outbox_{new_id().lower()}"


@pytest.fixture
async def pg(table: str) -> AsyncIterator[Any]:
    import asyncpg

    conn = await asyncpg.connect(PG_DSN)
    yield conn
    for name in (table, f"{table}_events"):
        await conn.execute(f"DROP TABLE IF EXISTS {name}")
    await conn.close()
