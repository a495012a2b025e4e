"""A consumer process that journals to a shared store, to be SIGKILLed mid-handler.

    python worker.py URL TOPIC GROUP JOURNAL_URL NAME

Prints "ready" once consuming, "started <correlation id>" inside the handler, then hangs.
Not a test module: ``test_live_verdicts.py`` starts it as a subprocess.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from clicktrace import context as click_context
from clicktrace.bus import create_bus
from clicktrace.envelope import Envelope
from clicktrace.journal import Journal, create_store, set_process, use

FAST: dict[str, dict[str, Any]] = {
    "redis": {"block_ms": 100},
    "amqp": {},
    "nats": {"fetch_timeout": 0.2},
}


def store_options(journal_url: str, name: str) -> dict[str, Any]:
    return {"prefix": name} if journal_url.startswith("redis") else {"table": name}


async def main(url: str, topic: str, group: str, journal_url: str, name: str) -> None:
    use(Journal(create_store(journal_url, **store_options(journal_url, name))))
    set_process("doomed-worker")
    bus = create_bus(url, **FAST.get(url.split(":", 1)[0], {}))

    async def handler(envelope: Envelope) -> None:
        ctx = click_context.current()
        print("started", ctx and ctx.correlation_id, flush=True)
        await asyncio.Event().wait()  # until SIGKILL

    bus.subscribe(topic, handler, group=group)
    await bus.start()
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
