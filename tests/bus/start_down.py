"""How long ``start()`` takes to give up on a broker that is down, and what it logs. Not a
test (pytest does not collect it): a measurement for docs/bus.md.

    PYTHONPATH=$PWD/py_sdk .venv/bin/python tests/bus/start_down.py nats://127.0.0.1:PORT
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time

from clicktrace.bus import create_bus
from clicktrace.envelope import Envelope


class Count(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines = self.tracebacks = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.lines += 1
        self.tracebacks += bool(record.exc_info)


async def main(url: str) -> None:
    counted = Count()
    logging.getLogger().addHandler(counted)
    logging.getLogger().setLevel(logging.INFO)
    bus = create_bus(url)

    async def handler(envelope: Envelope) -> None:
        pass

    bus.subscribe("t", handler, group="g")
    started = time.monotonic()
    error = "started"
    try:
        await bus.start()
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"[:150]
    took = time.monotonic() - started
    print(f"{url}: {took:.1f} s, {counted.lines} log records, {counted.tracebacks} with traceback")
    print(f"  {error}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
