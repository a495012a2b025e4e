"""Private broker instances a test starts on its own ports, so it may kill, restart and wipe
them without touching the shared services: ``redis-server`` without persistence and
``nats-server`` with JetStream in a temp dir. Also the loop a loss test shares: publish
continuously, lose the broker's data mid-burst, and check what was published afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from clicktrace.bus import Bus
from clicktrace.envelope import Envelope, new_envelope
from clicktrace.testing import free_port

DEADLINE = 60.0  # generous: the suite runs on two loaded cores


async def wait_for(condition: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def _accepting(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class PrivateServer:
    """One broker process on its own port; ``kill()`` then ``start()`` reuses the port."""

    def __init__(self) -> None:
        self.port = free_port()
        self._proc: asyncio.subprocess.Process | None = None

    def _argv(self) -> list[str]:
        raise NotImplementedError

    async def _ready(self) -> bool:
        return _accepting(self.port)

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            *self._argv(),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        deadline = time.monotonic() + DEADLINE
        while not await self._ready():
            if self._proc.returncode is not None:
                raise RuntimeError(f"{self._argv()[0]} exited with {self._proc.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self._argv()[0]} did not start on port {self.port}")
            await asyncio.sleep(0.05)

    async def kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()
        deadline = time.monotonic() + DEADLINE
        while _accepting(self.port):  # gone for good before anyone starts it again
            if time.monotonic() > deadline:
                raise RuntimeError(f"port {self.port} still accepts after the kill")
            await asyncio.sleep(0.05)


class PrivateRedis(PrivateServer):
    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _argv(self) -> list[str]:
        return [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]


class PrivateNats(PrivateServer):
    def __init__(self) -> None:
        super().__init__()
        self.store = Path(tempfile.mkdtemp(prefix="clicktrace-nats-"))

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def _argv(self) -> list[str]:
        return [
            "nats-server",
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-js",
            "-sd",
            str(self.store),
        ]

    def wipe(self) -> None:
        """Forget every stream and consumer (call while the server is down)."""
        shutil.rmtree(self.store, ignore_errors=True)
        self.store.mkdir()

    def remove(self) -> None:
        shutil.rmtree(self.store, ignore_errors=True)


@dataclass
class Burst:
    """Publishes numbered envelopes one after another until stopped; remembers which publishes
    returned (the bus accepted them), with when each began, and what the consumer handled."""

    bus: Bus
    topic: str
    accepted: list[tuple[float, str]] = field(default_factory=list)
    handled: dict[str, float] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None
    _stop: bool = False

    async def handler(self, envelope: Envelope) -> None:
        self.handled.setdefault(envelope.metadata.message_id, time.monotonic())

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        n = 0
        while not self._stop:
            n += 1
            envelope = new_envelope("Burst", {"n": n})
            # When the publish began: one begun before a loss may be confirmed after it
            # while its message went down with the lost queue.
            began = time.monotonic()
            try:
                await asyncio.wait_for(self.bus.publish(self.topic, envelope), 10)
            except Exception:  # the broker is away: a relay would try this row again later
                await asyncio.sleep(0.05)
                continue
            self.accepted.append((began, envelope.metadata.message_id))
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        self._stop = True
        if self._task is not None:
            await self._task

    def accepted_since(self, moment: float) -> list[str]:
        """The accepted publishes begun after ``moment``."""
        return [message_id for at, message_id in self.accepted if at > moment]


async def lose_and_recover(
    burst: Burst, lose: Callable[[], Awaitable[None]], *, case: str, after: int = 100
) -> tuple[list[str], float]:
    """Publish, ``lose`` the broker's data mid-burst, publish ``after`` more; wait until all
    those (accepted after the loss) are handled. Returns them and the recovery time: from the
    loss to the first of them handled (printed, not asserted: it depends on the machine)."""
    burst.start()
    await wait_for(lambda: len(burst.handled) >= 20, "the burst to be consumed")
    await lose()
    lost_at = time.monotonic()
    await wait_for(lambda: len(burst.accepted_since(lost_at)) >= after, "publishes after the loss")
    await burst.stop()
    later = burst.accepted_since(lost_at)
    with contextlib.suppress(AssertionError):
        await wait_for(lambda: all(m in burst.handled for m in later), "the later messages")
    first = min((burst.handled[m] for m in later if m in burst.handled), default=float("nan"))
    print(f"\n{case}: recovered in {first - lost_at:.2f} s; {len(later)} published after it")
    return later, first - lost_at
