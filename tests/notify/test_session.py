"""Client tokens (canonical form, tampering, expiry, the bound user) and the session route
that hands them out (renewal, ``user_of``, the per-address rate, bad bodies)."""

from __future__ import annotations

import base64
import json
from unittest.mock import ANY

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import HTTPConnection

from clicktrace.ids import new_id, parse_id
from clicktrace.notify._session import MAX_SESSION_BODY, TokenSigner, resolve_user, session_route
from clicktrace.protocol import MAX_CLIENT_TOKEN_LENGTH
from clicktrace.web._limits import RateLimit

SECRET = "a-secret-of-at-least-sixteen-bytes"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_issue_then_verify_names_the_client() -> None:
    signer = TokenSigner(SECRET)
    session = signer.issue()
    assert signer.verify(session.token) == session.client_id
    assert session.as_json() == {
        "client_id": session.client_id,
        "token": session.token,
        "expires_at": session.expires_at,
    }


def test_issue_keeps_a_given_client_id_in_canonical_form() -> None:
    cid = new_id()
    session = TokenSigner(SECRET).issue(cid.lower())
    assert session.client_id == cid


def test_expiry() -> None:
    clock = Clock()
    signer = TokenSigner(SECRET, ttl_seconds=60, clock=clock)
    session = signer.issue()
    assert session.expires_at == int(clock.now * 1000) + 60_000
    clock.now += 59.9
    assert signer.verify(session.token) == session.client_id
    clock.now += 0.1
    assert signer.verify(session.token) is None


def test_another_secret_rejects() -> None:
    token = TokenSigner(SECRET).issue().token
    assert TokenSigner(SECRET + "x").verify(token) is None
    assert TokenSigner(None).verify(token) is None


def _reencode(token: str, change: dict[str, object]) -> str:
    prefix, body, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims.update(change)
    raw = json.dumps(claims, separators=(",", ":")).encode()
    return f"{prefix}.{base64.urlsafe_b64encode(raw).rstrip(b'=').decode()}.{sig}"


def test_tampered_claims_are_rejected() -> None:
    signer = TokenSigner(SECRET)
    session = signer.issue()
    assert signer.verify(_reencode(session.token, {"c": new_id()})) is None
    assert signer.verify(_reencode(session.token, {"x": session.expires_at + 10**9})) is None


def test_tampered_signature_is_rejected() -> None:
    signer = TokenSigner(SECRET)
    token = signer.issue().token
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    assert signer.verify(flipped) is None
    assert signer.verify(token.rsplit(".", 1)[0] + ".") is None


def _respell_last_character(token: str) -> str:
    # 32 signature bytes are 43 base64 characters; the last one carries 2 unused low bits.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    index = alphabet.index(token[-1])
    return token[:-1] + alphabet[index ^ 1]


def test_a_token_has_one_spelling() -> None:
    signer = TokenSigner(SECRET)
    token = signer.issue().token
    prefix, body, sig = token.split(".")
    respelt = [
        token + "==",
        token + "=",  # padding
        _respell_last_character(token),  # unused bits of the signature
        f"{prefix}.{body}=.{sig}",  # padding inside the payload
        f"{prefix}.{body}.{sig[:10]}!{sig[10:]}",  # a character the decoder skips
        f"{prefix}.{body}.{sig[:10]}\n{sig[10:]}",
    ]
    assert signer.verify(token) is not None
    for spelling in respelt:
        assert signer.verify(spelling) is None, spelling


def test_a_user_who_cannot_fit_in_a_token_is_refused_at_issue() -> None:
    signer = TokenSigner(SECRET)
    assert signer.verify(signer.issue(user="\u00e9" * 128).token) is not None  # 2 bytes each
    with pytest.raises(ValueError, match="longer than"):
        signer.issue(user="\x01" * 128)  # each escaped to six characters in the JSON


def test_user_is_bound() -> None:
    signer = TokenSigner(SECRET)
    claims = signer.claims(signer.issue(user="alice").token)
    assert claims is not None and claims.user == "alice"
    anon = signer.claims(signer.issue().token)
    assert anon is not None and anon.user is None


@pytest.mark.parametrize(
    "value",
    [
        None,
        42,
        b"v1.x.y",
        "",
        "v1.",
        "v1..",
        "v2.a.b",
        "x" * (MAX_CLIENT_TOKEN_LENGTH + 1),
        "v1.é.b",
        "v1.a.b.c",
    ],
)
def test_garbage_is_none(value: object) -> None:
    assert TokenSigner(SECRET).verify(value) is None


@given(st.text(max_size=600))
def test_verify_never_raises(text: str) -> None:
    assert TokenSigner(SECRET).verify(text) is None


def test_signed_but_malformed_claims_are_none() -> None:
    # Forge validly signed tokens whose claims are wrong, to reach every check past the HMAC.
    signer = TokenSigner(SECRET)
    for claims in (
        [1],
        {"c": 1, "x": 2**62},
        {"c": new_id(), "x": True},
        {"c": new_id(), "x": 2**62, "u": 3},
        {"c": "nope", "x": 2**62},
    ):
        raw = json.dumps(claims).encode()
        body = "v1." + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        token = (
            body + "." + base64.urlsafe_b64encode(signer._sign(body.encode())).rstrip(b"=").decode()
        )
        assert signer.verify(token) is None


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        TokenSigner("short")
    with pytest.raises(TypeError):
        TokenSigner(123)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        TokenSigner(SECRET, ttl_seconds=0)
    with pytest.raises(ValueError):
        TokenSigner(SECRET).issue("not-a-ulid")
    with pytest.raises(ValueError):
        TokenSigner(SECRET).issue(user="u" * 1000)


def test_from_env() -> None:
    token = TokenSigner(SECRET).issue().token
    assert TokenSigner.from_env(environ={"CLICKTRACE_SECRET": SECRET}).verify(token)
    assert TokenSigner.from_env("APP_SECRET", environ={"APP_SECRET": SECRET}).verify(token)
    assert TokenSigner.from_env(environ={}).verify(token) is None  # random secret
    assert TokenSigner.from_env(environ={"CLICKTRACE_SECRET": ""}).verify(token) is None
    with pytest.raises(ValueError):
        TokenSigner.from_env(environ={"CLICKTRACE_SECRET": "short"})
    assert TokenSigner.from_env(ttl_seconds=5, environ={}).ttl_seconds == 5


# The session route.


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
