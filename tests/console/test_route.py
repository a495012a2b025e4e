"""The console's routes: nothing without a session, signing in and out, the page and its
assets, and the data the page reads, on every journal store."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from clicktrace.console import CONSOLE_PATH, console_routes
from clicktrace.console._auth import COOKIE, Sessions
from clicktrace.ids import new_id
from clicktrace.journal import Journal, MemoryStore
from clicktrace.web import RateLimit
from tests.console.conftest import confirmed, dead_lettered, now_ms, stuck

TOKEN = "operator-secret-token-for-the-console"
P = CONSOLE_PATH
CSRF = {"x-clicktrace-console": "1"}


def app(journal: Journal, assets: Path | None = None, **options: Any) -> Starlette:
    if assets is not None:
        options["assets"] = assets
    return Starlette(routes=console_routes(journal, operator_token=TOKEN, **options))


def client_for(starlette: Starlette, base: str = "http://test") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=starlette), base_url=base)


async def signed_in(client: httpx.AsyncClient) -> httpx.AsyncClient:
    r = await client.post(f"{P}/session", data={"token": TOKEN})
    assert r.status_code == 303, r.text
    return client


@pytest.fixture
async def journal() -> AsyncIterator[Journal]:
    j = Journal(MemoryStore())
    yield j
    await j.aclose()


@pytest.fixture
async def client(journal: Journal) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app(journal, health=_health)) as c:
        yield c


async def _health() -> Mapping[str, Any]:
    return {"status": "Healthy", "entries": {"bus": {"status": "Healthy"}}}


def every_request(journal: Journal, cid: str) -> list[tuple[str, str]]:
    """Every route the console has (read from its route list, so a new one is enumerated
    too), with known, unknown and malformed ids, plus paths it has not, with every method."""
    paths = []
    for route in console_routes(journal, operator_token=TOKEN):
        assert isinstance(route, Route)
        if route.path.endswith("/session"):
            continue  # signing in: open to all, tested below
        for value in (cid, new_id(), "not-an-id", "..%2F..%2Fetc%2Fpasswd", "console.js"):
            path = route.path
            for name in ("{correlation_id}", "{name:path}", "{rest:path}"):
                path = path.replace(name, value)
            paths.append(path)
    paths += [f"{P}/", f"{P}/api/clicks?q={cid[:8]}", f"{P}/api/latency?minutes=5"]
    methods = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
    return [(m, p) for p in dict.fromkeys(paths) for m in methods]


async def test_without_a_session_every_route_answers_401_and_says_nothing(
    client: httpx.AsyncClient, journal: Journal
) -> None:
    dead = dead_lettered(now_ms() - 60_000)
    cid = dead[0].correlation_id
    await journal.store.write(dead)
    bodies = set()
    asked = every_request(journal, cid)
    assert len(asked) > 100
    for method, path in asked:
        r = await client.request(method, path, headers=CSRF)
        assert r.status_code == 401, (method, path, r.status_code)
        assert "set-cookie" not in r.headers
        if method == "HEAD":
            assert r.content == b""
        elif r.headers["content-type"].startswith("application/json"):
            body = r.json()
            assert body["error"]["code"] == "unauthorized"
            bodies.add(body["error"]["message"])
        else:  # the page: the sign-in form, the same for every path
            assert 'name="token"' in r.text and "<script" not in r.text
            assert cid not in r.text and "dead" not in r.text
            bodies.add(r.text)
    assert len(bodies) == 2  # one JSON refusal and one sign-in page, whatever was asked


async def test_a_wrong_or_forged_cookie_is_no_session(client: httpx.AsyncClient) -> None:
    other = Sessions("another-token").cookie()
    good = Sessions(TOKEN).cookie()
    expiry, nonce, mac = good.split(".")
    for value in (other, f"{int(expiry) + 10}.{nonce}.{mac}", "x" * 5000, "", "1.2.3"):
        client.cookies.set(COOKIE, value)
        r = await client.get(f"{P}/api/attention")
        assert r.status_code == 401, value


async def test_signing_in_sets_a_strict_http_only_cookie_that_holds_no_token(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post(f"{P}/session", data={"token": TOKEN})
    assert r.status_code == 303 and r.headers["location"] == P
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    for flag in ("HttpOnly", "SameSite=strict", f"Path={P}", "Max-Age=43200"):
        assert flag.lower() in cookie.lower(), flag
    assert "secure" not in cookie.lower()  # plain http: a Secure cookie would never come back
    assert TOKEN not in cookie
    page = await client.get(P)
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert f'src="{P}/assets/console.js"' in page.text
    assert (await client.get(f"{P}/")).status_code == 200


async def test_the_page_with_or_without_its_slash_offers_the_sign_in_form(
    client: httpx.AsyncClient,
) -> None:
    for path in (P, f"{P}/"):
        r = await client.get(path)
        assert r.status_code == 401 and r.headers["content-type"].startswith("text/html")
        assert f'action="{P}/session"' in r.text


async def test_over_https_the_cookie_is_secure(journal: Journal) -> None:
    async with client_for(app(journal), base="https://test") as c:
        r = await c.post(f"{P}/session", data={"token": TOKEN})
        assert "secure" in r.headers["set-cookie"].lower()


async def test_a_json_sign_in_works_too_and_a_wrong_token_is_401(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post(f"{P}/session", json={"token": "wrong"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    r = await client.post(f"{P}/session", data={"token": "wrong"})
    assert r.status_code == 401 and "not the operator token" in r.text
    assert "wrong" not in r.text
    r = await client.post(f"{P}/session", json={"token": TOKEN})
    assert r.status_code == 303


async def test_signing_in_is_rate_limited_per_peer_even_for_the_right_token(
    journal: Journal,
) -> None:
    limited = app(journal, sign_in_limit=RateLimit(per_second=0.001, burst=3))
    async with client_for(limited) as c:
        for _ in range(3):
            assert (await c.post(f"{P}/session", data={"token": "guess"})).status_code == 401
        r = await c.post(f"{P}/session", data={"token": TOKEN})
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
        assert "set-cookie" not in r.headers


async def test_the_token_is_never_logged(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await client.post(f"{P}/session", data={"token": TOKEN})
    await client.post(f"{P}/session", data={"token": TOKEN + "x"})
    await client.get(f"{P}/api/clicks")
    assert TOKEN not in caplog.text


async def test_signing_out_clears_the_cookie(client: httpx.AsyncClient) -> None:
    await signed_in(client)
    assert (await client.post(f"{P}/session/end")).status_code == 403  # no console header
    r = await client.post(f"{P}/session/end", headers=CSRF)
    assert r.status_code == 303
    assert "max-age=0" in r.headers["set-cookie"].lower()
    assert (await client.get(f"{P}/api/attention")).status_code == 401


async def test_a_post_without_the_console_header_is_403(client: httpx.AsyncClient) -> None:
    await signed_in(client)
    r = await client.post(f"{P}/api/clicks/{new_id()}/resend")
    assert r.status_code == 403
    r = await client.get(f"{P}/api/clicks/{new_id()}/resend")
    assert r.status_code == 405


async def test_the_operator_bearer_token_opens_the_api_without_a_cookie(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get(f"{P}/api/attention", headers={"authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200


async def test_assets_are_served_from_the_static_folder_and_nothing_else(
    journal: Journal, tmp_path: Path
) -> None:
    (tmp_path / "console.js").write_text("export {};\n")
    (tmp_path / "secret.py").write_text("x = 1\n")
    (tmp_path / "chunks").mkdir()
    (tmp_path / "chunks" / "a.css").write_text("body{}\n")
    async with client_for(app(journal, assets=tmp_path)) as c:
        await signed_in(c)
        r = await c.get(f"{P}/assets/console.js")
        assert r.status_code == 200 and r.text == "export {};\n"
        assert r.headers["content-type"].startswith("text/javascript")
        assert r.headers["x-content-type-options"] == "nosniff"
        assert (await c.get(f"{P}/assets/chunks/a.css")).status_code == 200
        for bad in ("secret.py", "..%2Fconsole.js", "nope.js", ".hidden.js", "chunks/../x.js"):
            assert (await c.get(f"{P}/assets/{bad}")).status_code == 404, bad


async def test_a_signed_in_operator_gets_404_for_what_does_not_exist(
    client: httpx.AsyncClient,
) -> None:
    await signed_in(client)
    for path in (f"{P}/nothing", f"{P}/api/clicks/{new_id()}", f"{P}/api/clicks/not-an-id"):
        r = await client.get(path)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", path


async def test_bad_filters_are_400_with_the_filter_named(client: httpx.AsyncClient) -> None:
    await signed_in(client)
    for query, word in (
        ("verdict=nope", "verdict"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("since_ms=yesterday", "since_ms"),
        ("q=" + "A" * 65, "q"),
    ):
        r = await client.get(f"{P}/api/clicks?{query}")
        assert r.status_code == 400 and word in r.json()["error"]["message"], query
    r = await client.get(f"{P}/api/latency?minutes=61")
    assert r.status_code == 400


async def test_the_health_view_shows_the_whole_document(client: httpx.AsyncClient) -> None:
    await signed_in(client)
    body = (await client.get(f"{P}/api/health")).json()
    assert body["entries"]["bus"]["status"] == "Healthy"


def test_without_an_operator_token_there_is_no_console(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLICKTRACE_OPERATOR_TOKEN", raising=False)
    with pytest.raises(ValueError, match="operator token"):
        console_routes(journal)
    monkeypatch.setenv("CLICKTRACE_OPERATOR_TOKEN", TOKEN)
    assert all(isinstance(r, Route) for r in console_routes(journal))


class _Down:
    dropped = 0

    async def read(self, correlation_id: str) -> list[Any]:
        raise ConnectionError("redis at 10.0.0.7:6379 refused: password=hunter2")

    recent = open_clicks = dead_lettered = processes = read


async def test_a_store_that_is_down_is_503_with_retry_after_and_no_exception_text(
    caplog: pytest.LogCaptureFixture,
) -> None:
    down = Journal(MemoryStore())
    down.store = _Down()  # type: ignore[assignment]
    async with client_for(app(down)) as c:
        await signed_in(c)
        for path in ("api/clicks", f"api/clicks/{new_id()}", "api/attention", "api/latency"):
            r = await c.get(f"{P}/{path}")
            assert r.status_code == 503, path
            assert r.headers["retry-after"]
            assert "hunter2" not in r.text and "10.0.0.7" not in r.text
    assert "hunter2" not in caplog.text and "Traceback" not in caplog.text


# -- the data, on every store ---------------------------------------------------------------


async def test_the_views_read_every_store(any_journal: Journal) -> None:
    now = now_ms()
    ok = confirmed(now - 5_000)
    old_ok = confirmed(now - 50 * 60_000, action="todos.rename")
    dead = dead_lettered(now - 40_000)
    late = dead_lettered(now - 45_000, deadline=True)
    stopped = stuck(now - 60_000)
    lost = stuck(now - 70_000, tab_gave_up=True)
    await any_journal.store.write([*ok, *old_ok, *dead, *late, *stopped, *lost])
    cid = ok[0].correlation_id
    starlette = app(any_journal, trace_url="https://traces.example/trace/{trace_id}", bus=None)
    async with client_for(starlette) as c:
        await signed_in(c)

        items = (await c.get(f"{P}/api/clicks")).json()["items"]
        assert {i["correlation_id"] for i in items} >= {cid, dead[0].correlation_id}
        first = next(i for i in items if i["correlation_id"] == cid)
        assert first["action"] == "todos.add" and first["client_id"] == "tab-1"
        assert first["verdict"]["state"] == first["kind"] == "confirmed"
        assert first["line"].startswith("confirmed")
        actives = [i["started_ms"] for i in items]
        assert actives.index(first["started_ms"]) < len(actives) - 1  # newest first

        def ids(r: httpx.Response) -> set[str]:
            return {i["correlation_id"] for i in r.json()["items"]}

        part = cid[10:20].lower()  # pasted in part, in any case
        assert cid in ids(await c.get(f"{P}/api/clicks", params={"q": part}))
        whole = old_ok[0].correlation_id
        assert ids(await c.get(f"{P}/api/clicks", params={"q": f" {whole.lower()} "})) == {whole}
        deads = ids(await c.get(f"{P}/api/clicks", params={"verdict": "dead_lettered"}))
        assert deads == {dead[0].correlation_id}
        lates = ids(await c.get(f"{P}/api/clicks", params={"verdict": "timed_out"}))
        assert lates == {late[0].correlation_id}
        assert ids(await c.get(f"{P}/api/clicks", params={"action": "RENAME"})) == {whole}
        assert ids(await c.get(f"{P}/api/clicks", params={"client": "tab-2"})) == set()
        since = ids(await c.get(f"{P}/api/clicks", params={"since_ms": now - 10_000}))
        assert since == {cid}
        assert len((await c.get(f"{P}/api/clicks", params={"limit": 2})).json()["items"]) == 2

        one = (await c.get(f"{P}/api/clicks/{cid.lower()}")).json()
        assert one["correlation_id"] == cid and one["verdict"]["state"] == "confirmed"
        assert [s["stage"] for s in one["stages"]][:2] == ["clicked", "accepted"]
        assert one["trace_url"] == f"https://traces.example/trace/{'b' * 32}"
        assert one["line"].startswith("confirmed") and one["resendable"] is False
        d = (await c.get(f"{P}/api/clicks/{dead[0].correlation_id}")).json()
        assert d["verdict"]["state"] == "dead_lettered" and d["resendable"] is False  # no bus

        attention = (await c.get(f"{P}/api/attention")).json()
        assert attention["counts"] == {"stuck": 1, "lost": 1, "dead_lettered": 1, "timed_out": 1}
        listed = [i["correlation_id"] for i in attention["items"]]
        wanted = [lost, stopped, late, dead]  # oldest first
        assert listed == [x[0].correlation_id for x in wanted]

        lat = (await c.get(f"{P}/api/latency", params={"minutes": 2})).json()
        assert lat["minutes"] == 2 and len(lat["series"]) == 2
        stages = {s["stage"]: s for s in lat["stages"]}
        assert stages["published"]["p50_ms"] == 2.0 and stages["published"]["count"] >= 3
        assert lat["click_to_settled"]["count"] >= 1
        assert lat["click_to_settled"]["p50_ms"] is not None
        assert all(re.fullmatch(r"[a-z_]+", s) for s in stages)
