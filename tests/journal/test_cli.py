"""``python -m clicktrace journal|stuck`` against real stores, as a user runs it: every command
line in docs/observe.md, options anywhere, any deployment's prefix, a store that is down, and
stuck detection over 100,000 clicks."""

from __future__ import annotations

import asyncio
import io
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from clicktrace.ids import new_id
from clicktrace.journal import Entry, MemoryStore, Store, create_store
from clicktrace.journal._cli import _stuck, main
from clicktrace.journal._store import Process
from clicktrace.journal._verdict import Thresholds
from clicktrace.testing import unique_name

ROOT = Path(__file__).resolve().parents[2]
REDIS = "redis://127.0.0.1:6379/0"
PG = "postgresql://postgres@127.0.0.1:5432/test"
DOC_ID = "01JD8X3Q7E8W5V4T2N9R6M0K1A"


def run(
    *argv: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """The CLI in a subprocess (it runs its own event loop), as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "clicktrace", *argv],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT / "py_sdk"), **(env or {})},
        cwd=cwd,
    )


def click(cid: str, old: float, *, stuck: bool, sampled: bool = True) -> list[Entry]:
    entries = [
        Entry(
            correlation_id=cid,
            stage="accepted",
            at=old,
            outcome="202",
            process="api:1",
            sampled=sampled,
        ),
        Entry(
            correlation_id=cid,
            stage="delivered",
            at=old + 5,
            attempt=1,
            process="w:2",
            sampled=sampled,
        ),
    ]
    if not stuck:
        entries.append(
            Entry(
                correlation_id=cid,
                stage="notified",
                at=old + 9,
                outcome="confirmed",
                process="w:2",
                sampled=sampled,
            )
        )
    return entries


async def drop_redis(prefix: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(REDIS)
    batch: list[bytes] = []
    async for key in client.scan_iter(match=f"{prefix}*", count=5000):
        batch.append(key)
        if len(batch) >= 5000:
            await client.delete(*batch)
            batch = []
    if batch:
        await client.delete(*batch)
    await client.aclose()


async def drop_pg(table: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG)
    for t in (table, f"{table}_open", f"{table}_processes"):
        await conn.execute(f"DROP TABLE IF EXISTS {t}")
    await conn.close()


async def test_journal_prints_a_waterfall_and_stuck_lists_the_stuck(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/j.sqlite3"
    store = create_store(url)
    stuck, fine = new_id(), new_id()
    old = time.time() * 1000 - 120_000
    await store.write([*click(stuck, old, stuck=True), *click(fine, old, stuck=False)])
    await store.aclose()
    done = run("--store", url, "journal", stuck)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1].startswith("accepted      |█")
    assert "#1" in lines[2] and "w:2" in lines[2]
    # the state once: "verdict: stuck: stuck at …" (and "settled: settled:") was the bug
    assert lines[-1].startswith("verdict: stuck at delivered")
    fine_line = run("journal", fine, "--store", url).stdout.splitlines()[-1]
    assert fine_line.startswith("verdict: ") and not re.match(r"verdict: (\w+): \1", fine_line)
    listed = run("stuck", "--store", url)  # options after the command, too
    assert listed.returncode == 1
    assert listed.stdout.splitlines()[0].startswith(f"{stuck}  stuck at delivered")
    assert listed.stdout.splitlines()[-1] == "1 stuck"


def test_an_unknown_or_hostile_id_is_said_so() -> None:
    out = io.StringIO()
    assert main(["--store", "memory://", "journal", "../../etc/passwd" * 20], out) == 1
    assert out.getvalue().startswith("no journal for")


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:1/0",
        "redis://user:secret@127.0.0.1:1/0?prefix=a:b",
        "postgresql://postgres:secret@127.0.0.1:1/x?table=t",
    ],
)
def test_a_store_that_is_down_is_one_line_and_exit_2(url: str) -> None:
    done = run("stuck", "--store", url, "--timeout", "0.5")
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "could not be read" in done.stderr
    assert "Traceback" not in done.stderr and "secret" not in done.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["stuck", "--store", "redis://127.0.0.1:6379/0?max_ids=lots"],
        ["stuck", "--store", "sqlite:///x.sqlite3", "--prefix", "a"],
        ["stuck", "--store", "mysql://x"],
        ["stuck", "--store", "sqlite:///x.sqlite3?table=no;drop"],
    ],
)
def test_a_bad_command_line_is_one_line_and_exit_2(argv: list[str], tmp_path: Path) -> None:
    done = run(*argv, cwd=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "TypeError" not in done.stderr


def doc_commands() -> list[str]:
    """The CLI's command lines in docs/observe.md (``$ [VAR=value …] python -m clicktrace``);
    the health examples beside them (curl) are the distributed e2e test's."""
    text = (ROOT / "docs" / "observe.md").read_text()
    blocks = re.findall(r"```console\n(.*?)```", text, re.S)
    lines = [line[2:] for block in blocks for line in block.splitlines() if line.startswith("$ ")]
    return [line for line in lines if "python -m clicktrace" in line]


@pytest.fixture
def channel() -> Iterator[str]:
    name = unique_name("app", sql=True)
    yield name
    asyncio.run(drop_redis(f"{name}:journal"))
    asyncio.run(drop_pg(f"{name}_journal"))


@pytest.mark.broker
def test_every_command_line_in_the_docs_runs(channel: str, tmp_path: Path) -> None:
    """Each ``$ python -m clicktrace …`` line of docs/observe.md, run as written against
    stores this test fills: ``app1`` is this run's channel, the documented id a stuck click,
    and the environment names the channel (as the distributed demo sets it)."""
    commands = doc_commands()
    assert len(commands) >= 5
    old = time.time() * 1000 - 120_000
    entries = click(DOC_ID, old, stuck=True)
    (tmp_path / "data").mkdir()

    async def fill() -> None:
        stores: list[Store] = [
            create_store(REDIS, prefix=f"{channel}:journal"),
            create_store(PG, table=f"{channel}_journal"),
            create_store(f"sqlite:///{tmp_path}/data/journal.sqlite3"),
        ]
        for store in stores:
            await store.write(entries)
            await store.aclose()

    asyncio.run(fill())
    for line in commands:
        words = shlex.split(line.replace("app1", channel))
        env = {"CLICKTRACE_CHANNEL": channel}
        while "=" in words[0]:
            key, _, value = words.pop(0).partition("=")
            env[key] = value
        assert words[:3] == ["python", "-m", "clicktrace"], line
        done = run(*words[3:], env=env, cwd=tmp_path)
        expected = 1 if "stuck" in words else 0
        assert done.returncode == expected, (line, done.stdout, done.stderr)
        assert DOC_ID in done.stdout, (line, done.stdout)
        if "journal" in words[3:] and "stuck" not in words:
            assert "verdict: stuck at delivered" in done.stdout, line


@pytest.mark.broker
def test_the_prefix_from_the_url_the_option_and_the_channel_all_reach_redis(channel: str) -> None:
    prefix = f"{channel}:journal"
    cid = new_id()

    async def fill() -> None:
        store = create_store(f"{REDIS}?prefix={prefix}")  # in the URL: no TypeError
        await store.write(click(cid, time.time() * 1000 - 60_000, stuck=True))
        await store.aclose()

    asyncio.run(fill())
    for argv, env in [
        (["journal", cid, "--store", f"{REDIS}?prefix={prefix}"], {}),
        (["--prefix", prefix, "journal", cid, "--store", REDIS], {}),
        (["journal", cid], {"CLICKTRACE_CHANNEL": channel, "CLICKTRACE_JOURNAL_URL": REDIS}),
    ]:
        out = io.StringIO()
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            assert main(argv, out) == 0, argv
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        assert out.getvalue().splitlines()[-1].startswith("verdict: stuck at delivered")


CLICKS, STUCK = 100_000, 5_000


async def fill_many(store: Store) -> set[str]:
    """100,000 clicks, 5,000 of them stuck, 95 % sampled out, in the order they happened."""
    now = time.time() * 1000.0
    stuck: set[str] = set()
    batch: list[Entry] = []
    for i in range(CLICKS):
        cid = new_id()
        is_stuck = i % (CLICKS // STUCK) == 7
        if is_stuck:
            stuck.add(cid)
        batch += click(cid, now - 600_000 + i * 5, stuck=is_stuck, sampled=i % 20 == 0)
        if len(batch) >= 6000:
            await store.write(batch)
            batch = []
    if batch:
        await store.write(batch)
    return stuck


@pytest.mark.broker
def test_stuck_lists_all_5000_stuck_of_100000_clicks_on_redis(channel: str) -> None:
    prefix = f"{channel}:journal"

    async def fill() -> set[str]:
        store = create_store(REDIS, prefix=prefix)
        try:
            return await fill_many(store)
        finally:
            await store.aclose()

    stuck = asyncio.run(fill())
    out = io.StringIO()
    assert main(["stuck", "--store", REDIS, "--prefix", prefix], out) == 1
    lines = out.getvalue().splitlines()
    assert lines[-1] == f"{STUCK} stuck"
    listed = [line.split()[0] for line in lines[:-1]]
    assert set(listed) == stuck
    out = io.StringIO()
    main(["stuck", "--store", REDIS, "--prefix", prefix, "--limit", "100"], out)
    assert out.getvalue().splitlines()[-1] == (
        f"100 stuck in the 100 oldest of {STUCK} open clicks "
        "(--limit 100: raise it to read them all)"
    )


async def test_stuck_lists_all_5000_stuck_of_100000_clicks_in_memory() -> None:
    store = create_store("memory://")  # the default ring: 100,000 entries, far fewer than written
    stuck = await fill_many(store)
    out = io.StringIO()
    assert await _stuck(store, 50_000, Thresholds(), out) == 1
    lines = out.getvalue().splitlines()
    assert lines[-1] == f"{STUCK} stuck"
    assert {line.split()[0] for line in lines[:-1]} == stuck


async def test_a_click_whose_writer_died_reads_unknown_not_stuck() -> None:
    store = MemoryStore()
    now = time.time() * 1000.0
    cid = new_id()
    for e in click(cid, now - 120_000, stuck=True):
        store.add(e)
    # w:2 recorded the last entry, then went silent (SIGKILL): its next entries may be lost
    await store.register("w:2", Process(now - 200_000, now - 100_000, 5_000))
    out = io.StringIO()
    assert await _stuck(store, 100, Thresholds(), out) == 0
    assert out.getvalue().splitlines()[-1] == "0 stuck, 1 unknown (their writer died)"


@pytest.mark.parametrize("scheme", ["redis", "postgresql"])
def test_a_store_that_hangs_is_one_line_and_exit_2_within_the_timeout(
    silent_port: int, scheme: str
) -> None:
    url = f"{scheme}://postgres@127.0.0.1:{silent_port}/x"
    done = run("journal", DOC_ID, "--store", url, "--timeout", "0.5")
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "could not be read" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.broker
async def test_the_cli_reads_the_distributed_demos_journal_by_its_channel(channel: str) -> None:
    """As `make demo-distributed` runs: every process gets CLICKTRACE_CHANNEL and journals to
    Redis under it (demo_app/server/wiring.py); the CLI, given the same environment, reads it."""
    from demo_app.server.settings import Settings
    from demo_app.server.wiring import make_journal

    env = {"CLICKTRACE_CHANNEL": channel, "CLICKTRACE_JOURNAL_URL": REDIS}
    journal = make_journal(Settings.from_env(env))
    cid = new_id()
    for e in click(cid, time.time() * 1000.0 - 60_000, stuck=True):
        journal.put(e)
    await journal.flush()
    await journal.aclose()
    listed = await asyncio.to_thread(run, "stuck", env=env)
    assert listed.returncode == 1, listed.stderr
    assert listed.stdout.splitlines()[0].startswith(f"{cid}  stuck at delivered")


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0?prefix=",
        "redis://127.0.0.1:notaport/0",
        "redis://127.0.0.1:6379/0?socket_timeout=abc",
        "redis://[::1",
        "redis://127.0.0.1:6379/0?max_open=0",
        "postgresql://?table=",
        "postgresql://postgres@127.0.0.1:5432/test?table=1bad",
        "sqlite://",
        "memory://?max_entries=-1",
        "memory://?prefix=x:journal",
        "://",
        "x",
    ],
)
def test_no_url_ends_in_a_traceback(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = main(["stuck", "--store", url, "--timeout", "0.5"], io.StringIO())
    except SystemExit as exc:  # argparse's own refusal: usage and exit 2
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    assert code in (0, 2), err
    assert "Traceback" not in err and "TypeError" not in err
    if code == 2:
        assert len(err.strip().splitlines()) <= 2, err  # argparse prints usage + the error
