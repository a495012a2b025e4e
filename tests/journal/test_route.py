"""The journal route behind the middleware: the edge's entries, who may read them, and
hostile input."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clicktrace.asgi import ClicktraceMiddleware
from clicktrace.ids import new_id
from clicktrace.journal import Journal, journal_route, record
from clicktrace.notify import TokenSigner

OPERATOR = "operator-secret-token"


async def command(request: Request) -> Response:
    record("stored", detail="products")
    return JSONResponse({"ok": True}, 202)


async def invalid(request: Request) -> Response:
    return JSONResponse({"error": {"code": "invalid_body"}}, 422)


def app(journal: Journal, signer: TokenSigner, provider: TracerProvider) -> Starlette:
    return Starlette(
        routes=[
            Route("/commands", command, methods=["POST"]),
            Route("/invalid", invalid, methods=["POST"]),
            journal_route(journal, client_verifier=signer.verify, operator_token=OPERATOR),
        ],
        middleware=[
            Middleware(
                ClicktraceMiddleware, tracer_provider=provider, client_verifier=signer.verify
            )
        ],
    )


@pytest.fixture
def signer() -> TokenSigner:
    return TokenSigner(secret=b"k" * 32)


@pytest.fixture
def client(journal: Journal, signer: TokenSigner, provider: TracerProvider) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app(journal, signer, provider))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def click(client: httpx.AsyncClient, token: str, path: str = "/commands") -> str:
    cid = new_id()
    r = await client.post(path, headers={"x-correlation-id": cid, "x-clicktrace-client": token})
    assert r.headers["x-correlation-id"] == cid
    return cid


async def test_a_tab_reads_its_own_click_with_the_edge_and_app_stages(
    client: httpx.AsyncClient,
    signer: TokenSigner,
) -> None:
    session = signer.issue()
    cid = await click(client, session.token)
    r = await client.get(
        f"/clicktrace/journal/{cid}", headers={"x-clicktrace-client": session.token}
    )
    assert r.status_code == 200
    body = r.json()
    assert body["correlation_id"] == cid and body["client_id"] == session.client_id
    assert [s["stage"] for s in body["stages"]] == ["stored", "accepted"]
    accepted = body["stages"][1]
    assert (accepted["outcome"], accepted["detail"]) == ("202", "POST /commands 202")
    assert len(body["trace_ids"]) == 1 and accepted["trace_id"] == body["trace_ids"][0]
    assert body["verdict"]["state"] == "in_flight"
    assert set(body["stages"][0]) == {
        "stage",
        "at",
        "since_start_ms",
        "since_previous_ms",
        "trace_id",
        "span_id",
        "process",
        "attempt",
        "outcome",
        "detail",
        "duration_ms",
    }


async def test_a_refusal_is_journaled_from_the_status(
    client: httpx.AsyncClient,
    signer: TokenSigner,
) -> None:
    cid = await click(client, signer.issue().token, "/invalid")
    r = await client.get(
        f"/clicktrace/journal/{cid}", headers={"authorization": f"Bearer {OPERATOR}"}
    )
    assert r.json()["verdict"]["state"] == "refused"
    assert r.json()["verdict"]["outcome"] == "422"
    assert r.json()["stages"][0]["outcome"] == "422"


async def test_another_tab_and_no_token_get_the_same_404_as_an_unknown_id(
    client: httpx.AsyncClient,
    signer: TokenSigner,
) -> None:
    cid = await click(client, signer.issue().token)
    other = signer.issue().token
    answers = [
        await client.get(f"/clicktrace/journal/{cid}", headers={"x-clicktrace-client": other}),
        await client.get(f"/clicktrace/journal/{cid}"),
        await client.get(f"/clicktrace/journal/{cid}", headers={"authorization": "Bearer no"}),
        await client.get(f"/clicktrace/journal/{new_id()}", headers={"x-clicktrace-client": other}),
    ]
    for r in answers:
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "not_found"
        assert r.json()["correlation_id"] == r.headers["x-correlation-id"]
    assert len({r.json()["error"]["message"] for r in answers}) == 1


async def test_the_operator_token_reads_every_id(
    client: httpx.AsyncClient,
    signer: TokenSigner,
) -> None:
    cid = await click(client, signer.issue().token)
    r = await client.get(
        f"/clicktrace/journal/{cid}", headers={"authorization": f"Bearer {OPERATOR}"}
    )
    assert r.status_code == 200


async def test_the_sdk_own_routes_and_requests_without_an_id_are_not_journaled(
    client: httpx.AsyncClient,
    journal: Journal,
) -> None:
    await client.post("/invalid")  # the edge minted its id: no click named it
    await client.get(f"/clicktrace/journal/{new_id()}", headers={"x-correlation-id": new_id()})
    assert len(journal.store) == 0  # type: ignore[arg-type]


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=5000))
async def test_hostile_and_oversized_ids_get_404_never_a_500(raw: str) -> None:
    from clicktrace.journal import MemoryStore

    signer = TokenSigner(secret=b"k" * 32)
    a = app(Journal(MemoryStore()), signer, TracerProvider())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=a), base_url="http://test") as c:
        r = await c.get(
            f"/clicktrace/journal/{quote(raw, safe='')}",
            headers={"authorization": f"Bearer {OPERATOR}"},
        )
    # A trailing "/" after an id is Starlette's router redirecting before the route runs; "/"
    # alone leaves no id to redirect to.
    redirected = raw.endswith("/") and raw.count("/") == 1 and raw != "/"
    assert r.status_code == (307 if redirected else 404)
