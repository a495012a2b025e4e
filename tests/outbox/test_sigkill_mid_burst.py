"""SIGKILL mid-burst, per bus (memory, Redis, RabbitMQ, NATS; tabs on the WebSocket, and on
Socket.IO for memory): a real process running the whole loop (tests/outbox/crash_app.py)
takes a burst of commands from eight tabs, is killed
while a backlog exists (made on purpose: the projection is held once it has applied some), and
restarted on the same database. Every accepted command must be
applied exactly once, and every tab must hear each of its outcomes or a resync after it.

Prints per bus: commands accepted, killed at (accepted, applied), applied, lost, applied
twice, and the recovery time (restart until the last accepted command is applied and heard).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio
import websockets

from clicktrace.testing import free_port, unique_name

from ..bus.conftest import URLS, cleanup

APP = str(Path(__file__).with_name("crash_app.py"))
TABS = 8
POSTERS = 8
KILL_AFTER = 400  # accepted commands, at least, before the kill
HOLD_AFTER = 200  # applied commands before the projection is held
BACKLOG = 20  # commands accepted while it is held, at least, before the kill
AFTER_RESTART = 40  # more commands once the tabs are back, numbered in the new process
GIVE_UP_AFTER = 90.0  # seconds: a hang guard, not a timing assertion
SECRET = "crash-test-secret-of-enough-length"
CONSUMER = "crash-projection"


@dataclass
class Tab:
    client_id: str
    token: str
    last_seq: int = 0
    epoch: str | None = None
    heard: dict[str, float] = field(default_factory=dict)  # correlation id -> when
    resyncs: list[float] = field(default_factory=list)
    frames: int = 0

    def hello(self) -> str:
        hello: dict[str, Any] = {"token": self.token, "last_seq": self.last_seq}
        if self.epoch is not None:
            hello["epoch"] = self.epoch
        return json.dumps(hello)

    def on_frame(self, frame: dict[str, Any]) -> None:
        """What the plugin does (protocol: replay epochs)."""
        self.frames += 1
        now = time.monotonic()
        epoch = frame.get("epoch")
        resync = frame.get("status") == "resync"
        if isinstance(epoch, str) and epoch != self.epoch:
            if self.epoch is not None and not resync:
                self.resyncs.append(now)  # another numbering: forget the seqs seen
            self.epoch, self.last_seq = epoch, 0
        if resync:
            self.resyncs.append(now)
            self.last_seq = int(frame["seq"])
            return
        self.last_seq = int(frame["seq"])
        self.heard[str(frame["correlation_id"])] = now

    def covered(self, correlation_id: str, sent_at: float) -> bool:
        return correlation_id in self.heard or any(r > sent_at for r in self.resyncs)


async def start_app(
    url: str, topic: str, data: Path, port: int, transport: str, **env: str
) -> asyncio.subprocess.Process:
    """The crash app on ``port``, once it answers (``env``: more of its environment)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        APP,
        url,
        topic,
        str(data),
        str(port),
        SECRET,
        transport,
        env={**os.environ, **env},
    )
    async with httpx.AsyncClient() as client:
        while True:
            if proc.returncode is not None:
                raise RuntimeError(f"the app exited with {proc.returncode}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(f"http://127.0.0.1:{port}/ready")).status_code == 200:
                    return proc
            await asyncio.sleep(0.05)


def kill_app(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        os.kill(proc.pid, signal.SIGKILL)


async def _listen(tab: Tab, port: int, stop: asyncio.Event) -> None:
    """One tab's WebSocket, reconnecting (with last_seq and epoch) whenever it drops."""
    while not stop.is_set():
        with contextlib.suppress(OSError, websockets.WebSocketException):
            async with websockets.connect(f"ws://127.0.0.1:{port}/clicktrace/ws") as ws:
                await ws.send(tab.hello())
                async for text in ws:
                    tab.on_frame(json.loads(text))
        await asyncio.sleep(0.1)


async def _listen_socketio(tab: Tab, port: int, stop: asyncio.Event) -> None:
    """The same over Socket.IO: a new connection (auth with last_seq and epoch) each time."""
    while not stop.is_set():
        client = socketio.AsyncClient(reconnection=False)
        gone = asyncio.Event()

        async def frame(data: dict[str, Any]) -> None:
            tab.on_frame(data)

        client.on("clicktrace", frame)
        client.on("disconnect", lambda *args, gone=gone: gone.set())
        try:
            await client.connect(
                f"http://127.0.0.1:{port}",
                auth=json.loads(tab.hello()),
                transports=["websocket"],
                wait_timeout=5,
            )
            waits = [asyncio.ensure_future(e.wait()) for e in (gone, stop)]
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for w in waits:
                w.cancel()
        except (OSError, socketio.exceptions.SocketIOError):
            pass
        finally:
            with contextlib.suppress(Exception):
                await client.disconnect()
        await asyncio.sleep(0.1)


def applied(db: Path) -> tuple[set[str], int, int]:
    """Correlation ids applied, rows applied, distinct messages applied."""
    with contextlib.closing(sqlite3.connect(db, timeout=10)) as conn:
        rows = conn.execute("SELECT message_id, correlation_id FROM applied").fetchall()
    return {r[1] for r in rows}, len(rows), len({r[0] for r in rows})


@pytest.mark.timeout(240)
@pytest.mark.parametrize(
    ("bus", "transport"),
    [
        ("memory", "websocket"),
        ("redis", "websocket"),
        ("rabbitmq", "websocket"),
        ("nats", "websocket"),
        ("memory", "socketio"),
    ],
)
async def test_sigkill_mid_burst_applies_every_accepted_command_exactly_once(
    bus: str, transport: str, tmp_path: Path
) -> None:
    url, topic, port = URLS[bus], unique_name("crash"), free_port()
    db = tmp_path / "crash.sqlite3"
    base = f"http://127.0.0.1:{port}"
    accepted: dict[str, tuple[Tab, float]] = {}
    listen = _listen if transport == "websocket" else _listen_socketio
    proc = await start_app(url, topic, tmp_path, port, transport)
    stop_tabs = asyncio.Event()
    listeners: list[asyncio.Task[None]] = []
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            tabs = []
            for _ in range(TABS):
                issued = (await http.post("/clicktrace/session")).json()
                tabs.append(Tab(issued["client_id"], issued["token"]))
            listeners = [asyncio.create_task(listen(t, port, stop_tabs)) for t in tabs]
            stop_posting = asyncio.Event()

            async def post(worker: int) -> None:
                n = worker
                while not stop_posting.is_set():
                    tab = tabs[n % TABS]
                    sent_at = time.monotonic()
                    try:
                        response = await http.post(
                            "/commands", json={"n": n}, headers={"x-clicktrace-client": tab.token}
                        )
                    except httpx.TransportError:
                        return  # the server died under it: not accepted
                    if response.status_code == 202:
                        accepted[response.json()["correlation_id"]] = (tab, sent_at)
                    n += POSTERS

            # The burst; once some are applied the projection is held, so that everything
            # accepted from then on is a backlog the kill finds, whatever the machine's speed.
            posters = [asyncio.create_task(post(w)) for w in range(POSTERS)]
            hold, held_at = tmp_path / "hold", None
            while True:
                await asyncio.sleep(0.02)
                if any(p.done() for p in posters):
                    raise RuntimeError("a poster stopped before the kill")
                if held_at is None:
                    if len(applied(db)[0]) >= HOLD_AFTER:
                        hold.touch()
                        held_at = len(accepted)
                elif len(accepted) >= max(KILL_AFTER, held_at + BACKLOG):
                    break
            kill_app(proc)
            await proc.wait()
            stop_posting.set()
            await asyncio.gather(*posters)
            killed_at = len(accepted)
            applied_at_kill = len(accepted.keys() & applied(db)[0])

            hold.unlink()
            restarted = time.monotonic()
            proc = await start_app(url, topic, tmp_path, port, transport)
            ready = time.monotonic() - restarted
            # Once every tab is back on the new process (a frame since the restart), a few
            # more commands, numbered by the new process.
            before = {id(t): t.frames for t in tabs}
            while any(t.frames == before[id(t)] for t in tabs):
                if time.monotonic() - restarted > GIVE_UP_AFTER:
                    break
                await asyncio.sleep(0.05)
            for n in range(AFTER_RESTART):
                tab = tabs[n % TABS]
                sent_at = time.monotonic()
                response = await http.post(
                    "/commands", json={"n": -1 - n}, headers={"x-clicktrace-client": tab.token}
                )
                assert response.status_code == 202
                accepted[response.json()["correlation_id"]] = (tab, sent_at)

            def settled() -> bool:
                applied_ids = applied(db)[0]
                return all(
                    corr in applied_ids and tab.covered(corr, sent)
                    for corr, (tab, sent) in accepted.items()
                )

            while not settled() and time.monotonic() - restarted < GIVE_UP_AFTER:
                await asyncio.sleep(0.05)
            recovery = time.monotonic() - restarted
            await asyncio.sleep(1.0)  # room for a late duplicate to show up
        applied_ids, rows, distinct = applied(db)
    finally:
        stop_tabs.set()
        kill_app(proc)
        await proc.wait()
        for task in listeners:
            task.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)
        await cleanup(bus, topic, {(topic, CONSUMER)})

    lost = [c for c in accepted if c not in applied_ids]
    unheard = [c for c, (tab, sent) in accepted.items() if not tab.covered(c, sent)]
    twice = rows - distinct
    print(
        f"\ncrash[{bus}, {transport}]: accepted={len(accepted)} killed_at={killed_at} "
        f"(applied {applied_at_kill}, backlog {killed_at - applied_at_kill}) "
        f"applied={len(accepted) - len(lost)} lost={len(lost)} twice={twice} "
        f"unheard={len(unheard)} resyncs={sum(len(t.resyncs) for t in tabs)} "
        f"recovery={recovery:.2f}s (process ready after {ready:.2f}s)"
    )
    assert killed_at > applied_at_kill  # killed with a backlog
    assert lost == []
    assert twice == 0
    assert unheard == []
