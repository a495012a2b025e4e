"""The demo's command endpoint against what the attack found (issue 9, findings 3, 4, 5):
real uvicorn (httptools) on loopback, real SQLite, raw sockets where httpx would tidy the
request up."""

from __future__ import annotations

import contextlib
import socket
import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from clicktrace.ids import new_id, parse_id
from clicktrace.notify import TokenSigner
from clicktrace.protocol import REPLAYED_HEADER
from clicktrace.testing import free_port, unique_name
from demo_app.server import database
from demo_app.server.app import create_app
from demo_app.server.settings import Settings
from e2e.serve import run_coroutine, serving

SECRET = b"test-secret-of-at-least-16-bytes"
PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[httpx.Client]:
    settings = Settings(
        data_dir=tmp_path, web_dist=tmp_path, topic=unique_name("products"), secret=SECRET
    )
    with serving(create_app(settings)) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client


def renamed_events(tmp_path: Path) -> int:
    with sqlite3.connect(tmp_path / "catalogue.sqlite3") as conn:
        (count,) = conn.execute(
            "SELECT count(*) FROM events WHERE type = 'ProductRenamed'"
        ).fetchone()
    return int(count)


def assert_error(answer: httpx.Response, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["error"]["code"] == code
    assert body["correlation_id"] == answer.headers["x-correlation-id"]
    assert parse_id(body["correlation_id"]) == body["correlation_id"]


def rename(client: httpx.Client, **headers: str) -> httpx.Response:
    return client.post(
        "/api/products/1/rename",
        json={"name": f"N {new_id()}"},
        headers={k.replace("_", "-"): v for k, v in headers.items()},
    )


# --- finding 3: a refused token is a 401, not a 202 without a tab ------------------------


def test_forged_tampered_and_expired_tokens_get_401_invalid_client(
    demo: httpx.Client, tmp_path: Path
) -> None:
    good = demo.post("/clicktrace/session").json()["token"]
    other_secret = TokenSigner(secret=b"another-secret-16-bytes-long").issue().token
    expired = TokenSigner(secret=SECRET, clock=lambda: 1_000_000.0).issue().token
    tampered = good[:-2] + ("A" if good[-2] != "A" else "B") + good[-1]
    for token in (other_secret, expired, tampered, "v1.garbage.sig"):
        correlation_id = new_id()
        answer = rename(demo, x_clicktrace_client=token, x_correlation_id=correlation_id)
        assert_error(answer, 401, "invalid_client")
        assert answer.json()["correlation_id"] == correlation_id
    assert renamed_events(tmp_path) == 0
    assert rename(demo, x_clicktrace_client=good).status_code == 202
    assert rename(demo).status_code == 202  # no token at all: accepted, with no tab
    assert renamed_events(tmp_path) == 2


# --- finding 4: a retried command is answered once -----------------------------------------


def test_a_retried_command_is_applied_once_and_answered_with_the_first_answer(
    demo: httpx.Client, tmp_path: Path
) -> None:
    token = demo.post("/clicktrace/session").json()["token"]
    correlation_id = new_id()
    body = {"name": f"Once {new_id()}"}
    headers = {"x-clicktrace-client": token, "x-correlation-id": correlation_id}
    first = demo.post("/api/products/2/rename", json=body, headers=headers)
    again = demo.post("/api/products/2/rename", json=body, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json() == {"correlation_id": correlation_id, "status": "accepted"}
    assert again.headers[REPLAYED_HEADER] == "1"
    assert renamed_events(tmp_path) == 1


# --- finding 5: every hostile body or path is a 4xx ---------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/products/%2B1/rename",
        "/api/products/%201/rename",
        "/api/products/%D9%A3/rename",
        f"/api/products/{2**63}/rename",
        "/api/products/99999999999999999999999/rename",
    ],
)
def test_a_product_id_that_is_not_plain_ascii_digits_is_404(
    demo: httpx.Client, tmp_path: Path, path: str
) -> None:
    assert_error(demo.post(path, json={"name": "Hijack"}), 404, "not_found")
    assert renamed_events(tmp_path) == 0


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 1000 + b"]" * 1000,
        b'{"name": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"name": "\\ud800"}',
        b'{"name": "a\xffb"}',
        b"[]",
        b"{",
    ],
)
def test_a_hostile_body_is_400_invalid_body(
    demo: httpx.Client, tmp_path: Path, body: bytes
) -> None:
    answer = demo.post(
        "/api/products/1/rename", content=body, headers={"content-type": "application/json"}
    )
    assert_error(answer, 400, "invalid_body")
    assert renamed_events(tmp_path) == 0


def test_a_body_over_the_cap_is_413(demo: httpx.Client) -> None:
    answer = demo.post("/api/products/1/rename", content=b"x" * (16 * 1024 + 1))
    assert_error(answer, 413, "payload_too_large")


def test_a_declared_gigabyte_is_refused_before_it_is_sent(demo: httpx.Client) -> None:
    """The headers alone: the answer comes without a byte of the body being sent."""
    host, port = str(demo.base_url.host), int(demo.base_url.port or 80)
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/products/1/rename HTTP/1.1\r\nhost: x\r\n"
            b"content-type: application/json\r\ncontent-length: 1000000000\r\n\r\n"
        )
        head = sock.recv(65536)
    assert head.startswith(b"HTTP/1.1 413 "), head[:100]
    assert b"payload_too_large" in head or b"content-length" in head


# --- "database is locked": a 503 the client may retry, never a 500 ------------------------


def test_a_write_lock_held_past_the_busy_timeout_is_503_with_retry_after(
    demo: httpx.Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "BUSY_TIMEOUT_MS", 50)
    holder = sqlite3.connect(tmp_path / "catalogue.sqlite3", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        answer = rename(demo)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert_error(answer, 503, "unavailable")
    assert answer.headers["retry-after"] == "1"
    # the lock is free again: the same command now goes through
    assert rename(demo).status_code == 202


def test_on_postgres_too_a_retried_command_is_applied_once(tmp_path: Path) -> None:
    import asyncpg  # the distributed store

    schema = unique_name("demo", sql=True)
    settings = Settings(
        data_dir=tmp_path,
        web_dist=tmp_path,
        topic=unique_name("products"),
        secret=SECRET,
        database_url=PG_DSN,
        pg_schema=schema,
    )
    correlation_id = new_id()
    try:
        with serving(create_app(settings)) as url, httpx.Client(base_url=url) as client:
            headers = {"x-correlation-id": correlation_id}
            first = client.post("/api/products/3/rename", json={"name": "PG"}, headers=headers)
            again = client.post("/api/products/3/rename", json={"name": "PG"}, headers=headers)
    finally:

        async def count_and_drop() -> int:
            conn = await asyncpg.connect(PG_DSN)
            try:
                return int(
                    await conn.fetchval(
                        f"SELECT count(*) FROM {schema}.events WHERE type = 'ProductRenamed'"
                    )
                )
            finally:
                await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
                await conn.close()

        renamed = run_coroutine(count_and_drop())
    assert first.status_code == again.status_code == 202
    assert again.content == first.content and again.headers[REPLAYED_HEADER] == "1"
    assert renamed == 1


# --- issue 19: valid input on PostgreSQL is never a 500 -----------------------------------


class TcpProxy:
    """A loopback TCP relay to PostgreSQL that the test can cut: the server "goes down" for
    the demo (its pooled connections reset, new ones refused) while the shared server runs on."""

    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self.port = free_port()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._listener.settimeout(0.1)
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(self._target)
            with self._lock:
                if self._closed:
                    client.close()
                    upstream.close()
                    return
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Refuse new connections and reset the open ones."""
        self._closed = True
        self._accepting.join(timeout=10)
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()


@contextmanager
def postgres_demo(tmp_path: Path, dsn: str = PG_DSN) -> Iterator[tuple[httpx.Client, str]]:
    """The demo on PostgreSQL, in a schema of this test's own (dropped after)."""
    import asyncpg

    schema = unique_name("demo", sql=True)
    settings = Settings(
        data_dir=tmp_path,
        web_dist=tmp_path,
        topic=unique_name("products"),
        secret=SECRET,
        database_url=dsn,
        pg_schema=schema,
    )
    try:
        with (
            serving(create_app(settings)) as url,
            httpx.Client(base_url=url, timeout=60) as client,
        ):
            yield client, schema
    finally:

        async def drop() -> None:
            conn = await asyncpg.connect(PG_DSN)
            try:
                await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            finally:
                await conn.close()

        run_coroutine(drop())


def pg_fetch(query: str) -> list[Any]:
    import asyncpg

    async def fetch() -> list[Any]:
        conn = await asyncpg.connect(PG_DSN)
        try:
            return [tuple(r) for r in await conn.fetch(query)]
        finally:
            await conn.close()

    return run_coroutine(fetch())


def test_tabs_renaming_one_product_at_once_are_all_accepted_on_postgres(tmp_path: Path) -> None:
    """Issue 19: 20 concurrent renames of one product gave 500 in 16 (UniqueViolation on the
    event version). Each is appended at its own version now."""
    tabs = 20
    with postgres_demo(tmp_path) as (client, schema):
        start = threading.Barrier(tabs)

        def rename_now(i: int) -> httpx.Response:
            with httpx.Client(base_url=client.base_url, timeout=60) as own:
                start.wait(timeout=60)
                return own.post("/api/products/4/rename", json={"name": f"Tab {i} {new_id()}"})

        with ThreadPoolExecutor(tabs) as pool:
            answers = list(pool.map(rename_now, range(tabs)))
        versions = pg_fetch(
            f"SELECT version FROM {schema}.events WHERE stream = 'product-4' ORDER BY version"
        )
    assert [a.status_code for a in answers] == [202] * tabs, [a.text for a in answers]
    assert [v for (v,) in versions] == list(range(1, tabs + 2))  # created, then each rename


@pytest.mark.parametrize("product_id", [2**31 - 1, 2**31, 2**62, 2**63 - 1])
def test_a_product_id_beyond_the_column_is_404_on_postgres(tmp_path: Path, product_id: int) -> None:
    with postgres_demo(tmp_path) as (client, _):
        answer = client.post(f"/api/products/{product_id}/rename", json={"name": "Far"})
        assert_error(answer, 404, "not_found")


def test_a_name_with_a_control_character_is_422_not_a_dead_letter(demo: httpx.Client) -> None:
    for name in ("a\x00b", "bell\x07", "esc\x1b[31m"):
        answer = demo.post("/api/products/1/rename", json={"name": name})
        assert_error(answer, 422, "invalid_name")


def test_a_database_that_is_down_is_503_with_retry_after_never_500(tmp_path: Path) -> None:
    proxy = TcpProxy(("127.0.0.1", 5432))
    try:
        dsn = f"postgresql://postgres@127.0.0.1:{proxy.port}/test"
        with postgres_demo(tmp_path, dsn) as (client, _):
            assert client.post("/api/products/1/rename", json={"name": "Up"}).status_code == 202
            proxy.cut()
            for _ in range(2):  # the pooled connection is reset; then the connect is refused
                for answer in (
                    client.get("/api/products"),
                    client.post("/api/products/1/rename", json={"name": "Down"}),
                ):
                    assert_error(answer, 503, "unavailable")
                    assert answer.headers["retry-after"] == "2"
                    assert "postgres" not in answer.text.lower()
    finally:
        proxy.cut()
