"""What the span route journals, through the real edge: a tab's own clicks get their browser
stages; a spoofed stage is refused; the browser-derived metrics count only the clicks the
server answered for that client."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.applications import Starlette

from clicktrace import journal as journal_api
from clicktrace.ids import new_id
from clicktrace.journal import Journal, MemoryStore
from clicktrace.journal._entry import BROWSER_STAGES
from clicktrace.notify import TokenSigner

from ..metrics.readings import points
from .app import COMMAND, SECRET, LaggingStore, click_app
from .bodies import CHILD_ID, TRACE_ID, action_span, http_span, otlp_body

TRACES = "/clicktrace/v1/traces"


@pytest.fixture
def journal() -> Iterator[Journal]:
    j = Journal(MemoryStore())
    previous = journal_api.use(j)
    yield j
    journal_api.use(previous)


@pytest.fixture
def signer() -> TokenSigner:
    return TokenSigner(SECRET)


def client(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test")


async def command(http: httpx.AsyncClient, token: str, cid: str | None = None, **q: Any) -> str:
    """A command the tab sends; its correlation id."""
    cid = cid or new_id()
    reply = await http.post(
        COMMAND,
        params=q,
        headers={
            "x-correlation-id": cid,
            "x-clicktrace-client": token,
            "traceparent": f"00-{TRACE_ID}-{CHILD_ID}-01",  # the click's trace, as the plugin
        },
    )
    assert reply.status_code in (202, 422)
    return cid


async def export(http: httpx.AsyncClient, token: str | None, *spans: dict[str, Any]) -> None:
    headers = {"x-clicktrace-client": token} if token else {}
    reply = await http.post(TRACES, json=otlp_body(*spans), headers=headers)
    assert reply.status_code == 200
    assert reply.json() == {"partialSuccess": {}}  # taken or not, the spans were valid


async def where(http: httpx.AsyncClient, token: str, cid: str) -> dict[str, Any]:
    reply = await http.get(f"/clicktrace/journal/{cid}", headers={"x-clicktrace-client": token})
    assert reply.status_code == 200
    body: dict[str, Any] = reply.json()
    return body


@pytest.fixture
async def http(journal: Journal, signer: TokenSigner) -> AsyncIterator[httpx.AsyncClient]:
    async with client(click_app(journal, signer)) as http:
        yield http


async def test_a_tab_gets_the_browser_stages_of_its_own_click(
    http: httpx.AsyncClient, signer: TokenSigner
) -> None:
    tab = signer.issue().token
    start = time.time_ns()
    cid = await command(http, tab)
    await export(http, tab, action_span(cid, start, time.time_ns()), http_span(cid, start + 1))
    got = await where(http, tab, cid)
    assert [s["stage"] for s in got["stages"]] == ["clicked", "http", "accepted", "settled"]
    # The tab's view sits beside the server's: this app never notifies, so it is in flight.
    assert got["verdict"]["state"] == "in_flight"
    assert got["verdict"]["tab"]["outcome"] == "confirmed"


async def test_the_edge_entry_names_the_client_the_middleware_verified(
    http: httpx.AsyncClient, journal: Journal, signer: TokenSigner
) -> None:
    session = signer.issue()
    mine, forged = await command(http, session.token), await command(http, "forged")
    (accepted,) = await journal.read(mine)
    assert (accepted.stage, accepted.client_id) == ("accepted", session.client_id)
    (unverified,) = await journal.read(forged)  # answered, but nobody's click
    assert unverified.client_id is None


async def test_a_spoofed_stage_is_refused(
    http: httpx.AsyncClient, journal: Journal, signer: TokenSigner
) -> None:
    # The finding: a stuck click's id (anonymous health showed it) plus one spoofed span
    # flipped it to "settled confirmed". The attacker even sends a command naming that id.
    victim, attacker = signer.issue().token, signer.issue().token
    cid = await command(http, victim)
    await command(http, attacker, cid)
    now = time.time_ns()
    await export(http, attacker, action_span(cid, now, now + 1), http_span(cid, now))
    entries = await journal.read(cid)
    assert not [e for e in entries if e.stage in BROWSER_STAGES]
    assert (await where(http, victim, cid))["verdict"]["state"] != "settled"


async def test_a_refused_command_is_still_the_tabs_click(
    http: httpx.AsyncClient, signer: TokenSigner
) -> None:
    tab = signer.issue().token
    start = time.time_ns()
    cid = await command(http, tab, refuse="1")
    await export(http, tab, action_span(cid, start, time.time_ns()))
    stages = [s["stage"] for s in (await where(http, tab, cid))["stages"]]
    assert stages == ["clicked", "refused", "settled"]


async def test_anonymous_senders_journal_nothing(journal: Journal, signer: TokenSigner) -> None:
    async with client(click_app(journal, signer, allow_anonymous=True)) as http:
        tab = signer.issue().token
        cid = await command(http, tab)
        now = time.time_ns()
        await export(http, None, action_span(cid, now, now + 1))
    assert [e.stage for e in await journal.read(cid)] == ["accepted"]


async def test_metrics_count_only_clicks_the_server_answered_for_that_client(
    http: httpx.AsyncClient, signer: TokenSigner, reader: InMemoryMetricReader
) -> None:
    tab, attacker = signer.issue().token, signer.issue().token
    start = time.time_ns()
    cid = await command(http, tab)
    await export(http, tab, action_span(cid, start, time.time_ns()))
    far = time.time_ns() + 86_400 * 10**9
    spoofed = [action_span(cid, far, far + 1)] + [
        action_span(new_id(), far, far) for _ in range(99)
    ]
    await export(http, attacker, *spoofed)
    await export(http, tab, action_span(cid, start, time.time_ns()))  # sent again
    got = points(reader)
    assert got["clicktrace.clicks.settled"] == [({"clicktrace.outcome": "confirmed"}, 1)]
    assert got["clicktrace.commands"] == [({"clicktrace.outcome": "accepted"}, 1)]
    offered = {a["clicktrace.outcome"]: n for a, n in got["clicktrace.browser.stages"]}
    assert offered == {"recorded": 2, "other_client": 2, "unknown_click": 198, "duplicate": 2}


async def test_without_a_journal_the_spans_are_traced_and_nothing_is_counted(
    signer: TokenSigner, reader: InMemoryMetricReader
) -> None:
    exporter = InMemorySpanExporter()
    async with client(click_app(Journal(MemoryStore()), signer, exporter)) as http:
        tab = signer.issue().token
        now = time.time_ns()
        cid = await command(http, tab)
        await export(http, tab, action_span(cid, now, time.time_ns()))
    assert len(exporter.get_finished_spans()) == 1
    got = points(reader)
    assert "clicktrace.clicks.settled" not in got and "clicktrace.browser.stages" not in got


async def test_a_journal_that_is_down_costs_the_stages_not_the_spans(
    signer: TokenSigner, reader: InMemoryMetricReader
) -> None:
    store = LaggingStore()
    journal = Journal(store)
    previous = journal_api.use(journal)
    exporter = InMemorySpanExporter()
    try:
        async with client(click_app(journal, signer, exporter)) as http:
            tab = signer.issue().token
            now = time.time_ns()
            cid = await command(http, tab)
            store.failing = ConnectionError("redis is down")
            await export(http, tab, action_span(cid, now, time.time_ns()))
    finally:
        journal_api.use(previous)
        await journal.aclose()
    assert len(exporter.get_finished_spans()) == 1
    offered = {a["clicktrace.outcome"]: n for a, n in points(reader)["clicktrace.browser.stages"]}
    assert offered == {"journal_unavailable": 2}
