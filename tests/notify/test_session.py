from __future__ import annotations

from unittest.mock import ANY

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import HTTPConnection

from clicktrace.ids import new_id, parse_id
from clicktrace.notify.session import MAX_SESSION_BODY, resolve_user, session_route
from clicktrace.notify.tokens import TokenSigner
from clicktrace.web._limits import RateLimit

SECRET = "clicktrace-test-secret-0123456789"


async def user_from_header(conn: HTTPConnection) -> str | None:
    return conn.headers.get("x-user")


def client(signer: TokenSigner, **kwargs: object) -> httpx.AsyncClient:
    app = Starlette(routes=[session_route(signer, **kwargs)])  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


@pytest.mark.parametrize("body", [None, b"", b"{}", b'{"hint": 1}', b"  "])
async def test_issues_a_client_id_and_token(body: bytes | None) -> None:
    signer = TokenSigner(SECRET)
    async with client(signer) as http:
        response = await http.post("/clicktrace/session", content=body)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    data = response.json()
    assert set(data) == {"client_id", "token", "expires_at"}
    assert parse_id(data["client_id"]) == data["client_id"]
    assert signer.verify(data["token"]) == data["client_id"]


@pytest.mark.parametrize("body", [b"[]", b"{", b"x" * (MAX_SESSION_BODY + 1), b'"s"'])
async def test_refuses_a_bad_body(body: bytes) -> None:
    async with client(TokenSigner(SECRET)) as http:
        response = await http.post("/clicktrace/session", content=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_body"
    assert parse_id(response.json()["correlation_id"]) == response.headers["x-correlation-id"]


async def test_an_error_keeps_the_requests_correlation_id() -> None:
    corr = new_id()
    async with client(TokenSigner(SECRET)) as http:
        response = await http.post(
            "/clicktrace/session", content=b"[]", headers={"x-correlation-id": corr.lower()}
        )
    assert response.json() == {
        "error": {"code": "invalid_body", "message": ANY},
        "correlation_id": corr,
    }
    assert response.headers["x-correlation-id"] == corr


async def test_minting_is_limited_per_peer_whatever_tokens_it_presents() -> None:
    signer = TokenSigner(SECRET)
    async with client(signer, rate=RateLimit(per_second=0.001, burst=3)) as http:
        answers = [
            await http.post(
                "/clicktrace/session", headers={"x-clicktrace-client": signer.issue().token}
            )
            for _ in range(4)
        ]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    refused = answers[-1]
    assert refused.json()["error"]["code"] == "rate_limited"
    assert refused.json()["correlation_id"] == refused.headers["x-correlation-id"]
    assert refused.headers["retry-after"] == "1"


async def test_peers_have_their_own_budget() -> None:
    def peer_of(scope: object) -> str:
        return HTTPConnection(scope).headers["x-peer"]  # type: ignore[arg-type]

    async with client(
        TokenSigner(SECRET), rate=RateLimit(per_second=0.001, burst=1), peer_of=peer_of
    ) as http:
        statuses = [
            (await http.post("/clicktrace/session", headers={"x-peer": p})).status_code
            for p in ("a", "b", "a")
        ]
    assert statuses == [200, 200, 429]


async def test_only_post() -> None:
    async with client(TokenSigner(SECRET)) as http:
        assert (await http.get("/clicktrace/session")).status_code == 405


async def test_a_valid_token_renews_the_same_client() -> None:
    signer = TokenSigner(SECRET)
    async with client(signer) as http:
        first = (await http.post("/clicktrace/session")).json()
        renewed = (
            await http.post("/clicktrace/session", headers={"x-clicktrace-client": first["token"]})
        ).json()
        bogus = (
            await http.post("/clicktrace/session", headers={"x-clicktrace-client": "v1.x.y"})
        ).json()
    assert renewed["client_id"] == first["client_id"]
    assert bogus["client_id"] != first["client_id"]


async def test_tokens_bind_the_apps_user() -> None:
    signer = TokenSigner(SECRET)
    async with client(signer, user_of=user_from_header) as http:
        alice = (await http.post("/clicktrace/session", headers={"x-user": "alice"})).json()
        claims = signer.claims(alice["token"])
        assert claims is not None and claims.user == "alice"
        # Another user presenting alice's token gets a client of their own, not alice's.
        bob = (
            await http.post(
                "/clicktrace/session",
                headers={"x-user": "bob", "x-clicktrace-client": alice["token"]},
            )
        ).json()
        assert bob["client_id"] != alice["client_id"]
        again = (
            await http.post(
                "/clicktrace/session",
                headers={"x-user": "alice", "x-clicktrace-client": alice["token"]},
            )
        ).json()
        assert again["client_id"] == alice["client_id"]


async def test_resolve_user_checks_what_the_hook_returns() -> None:
    conn = HTTPConnection({"type": "http", "headers": []})
    assert await resolve_user(None, conn) is None
    assert await resolve_user(lambda c: "u", conn) == "u"
    with pytest.raises(TypeError):
        await resolve_user(lambda c: 42, conn)  # type: ignore[arg-type,return-value]
