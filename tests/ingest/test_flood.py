"""The flood finding, on the real Redis journal: 20,600 future-dated browser spans from one
session evicted every real click (404 from then on, new clicks included) and added 20,600 fake
"confirmed" clicks to the metrics. Here 22,500 of them (20,250 naming ids nobody sent, the rest
the flooder's own click), through the real edge and routes."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import redis.asyncio as aioredis
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from clicktrace.ids import new_id
from clicktrace.ingest._admission import (
    MAX_BROWSER_ENTRIES_PER_ID,
    MAX_CLICKS_PER_REQUEST,
    MAX_FUTURE_MS,
)
from clicktrace.journal import Journal, create_journal, use
from clicktrace.journal._entry import BROWSER_STAGES
from clicktrace.notify import TokenSigner
from clicktrace.testing import unique_name

from ..metrics.readings import points
from .app import COMMAND, SECRET, click_app
from .bodies import action_span, http_span, otlp_body

REDIS = "redis://127.0.0.1:6379/0"
REQUESTS, FRESH, OWN = 45, 450, 50  # 22,500 spans; 20,250 name ids nobody sent
DAY_NS = 86_400 * 10**9

pytestmark = pytest.mark.broker


@dataclass
class Served:
    http: httpx.AsyncClient
    journal: Journal
    signer: TokenSigner
    prefix: str


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    prefix = unique_name("journal")
    journal = create_journal(REDIS, prefix=prefix)
    signer = TokenSigner(SECRET)

    # The flood is about the journal, not the rate limits (which it stayed within).
    app = click_app(journal, signer)
    previous = use(journal)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as http:
            yield Served(http, journal, signer, prefix)
    finally:
        use(previous)
        await journal.aclose()
        client = aioredis.Redis.from_url(REDIS)
        keys = [k async for k in client.scan_iter(match=f"{prefix}*", count=1000)]
        for i in range(0, len(keys), 1000):
            await client.delete(*keys[i : i + 1000])
        await client.aclose()


async def click(s: Served, token: str) -> str:
    """The tab sends a command (the edge journals it), then exports the click's span."""
    cid, start = new_id(), time.time_ns()
    reply = await s.http.post(
        COMMAND, headers={"x-correlation-id": cid, "x-clicktrace-client": token}
    )
    assert reply.status_code == 202
    await s.journal.flush()
    exported = await s.http.post(
        "/clicktrace/v1/traces",
        json=otlp_body(action_span(cid, start, time.time_ns())),
        headers={"x-clicktrace-client": token},
    )
    assert exported.status_code == 200
    await s.journal.flush()
    return cid


async def test_a_future_dated_flood_from_one_session_leaves_another_tabs_click_readable(
    served: Served, reader: InMemoryMetricReader
) -> None:
    s = served
    victim, flooder = s.signer.issue().token, s.signer.issue().token
    before = await click(s, victim)
    own = await click(s, flooder)  # the flooder's own click: its spans are taken, capped
    future = time.time_ns() + DAY_NS
    for _ in range(REQUESTS):
        # The own click first: ids past the first MAX_CLICKS_PER_REQUEST are not read.
        spans = [http_span(own, future) for _ in range(OWN)]
        spans += [action_span(new_id(), future, future + 250_000_000) for _ in range(FRESH)]
        reply = await s.http.post(
            "/clicktrace/v1/traces",
            json=otlp_body(*spans),
            headers={"x-clicktrace-client": flooder},
        )
        assert reply.status_code == 200
        await s.journal.flush()  # as a flood over a minute would be written: nothing queued
    after = await click(s, victim)  # a new click, after the flood

    for cid in (before, after):
        reply = await s.http.get(
            f"/clicktrace/journal/{cid}", headers={"x-clicktrace-client": victim}
        )
        assert reply.status_code == 200, cid
        assert [st["stage"] for st in reply.json()["stages"]] == ["clicked", "accepted", "settled"]
    client = aioredis.Redis.from_url(REDIS)
    try:
        ids = await client.zcard(f"{s.prefix}:recent")
    finally:
        await client.aclose()
    assert ids == 3  # the flood created no correlation id
    # The flooder's own click: its share, at times clamped to just after receipt.
    flooded = [e for e in await s.journal.read(own) if e.stage in BROWSER_STAGES]
    assert len(flooded) == MAX_BROWSER_ENTRIES_PER_ID
    assert max(e.at for e in flooded) <= time.time() * 1000 + MAX_FUTURE_MS
    got = points(reader)
    assert got["clicktrace.clicks.settled"] == [({"clicktrace.outcome": "confirmed"}, 3)]
    offered = {a["clicktrace.outcome"]: n for a, n in got["clicktrace.browser.stages"]}
    read = MAX_CLICKS_PER_REQUEST - 1
    assert offered["unknown_click"] == REQUESTS * read * 2  # clicked and settled each
    assert offered["too_many_clicks"] == REQUESTS * (FRESH - read) * 2
    assert offered["per_click_cap"] == REQUESTS * OWN - (MAX_BROWSER_ENTRIES_PER_ID - 2)
