"""Without the optional clients installed, clicktrace still imports, and constructing a
backend fails with the exact install hint."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = r'''
import sys

class Block:
    """Pretend the optional clients are not installed."""
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"redis", "aio_pika", "nats", "asyncpg", "aiosqlite"}:
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None

sys.meta_path.insert(0, Block())
import clicktrace
from clicktrace.bus import create_bus
from clicktrace.claims import PostgresClaims, RedisClaims
from clicktrace.outbox import PostgresOutbox, SqliteOutbox

create_bus("memory://")
for make in (
    lambda: create_bus("redis://localhost"),
    lambda: create_bus("amqp://localhost"),
    lambda: create_bus("nats://localhost"),
    lambda: RedisClaims("redis://localhost"),
    lambda: PostgresClaims(),
    lambda: PostgresOutbox(),
    lambda: SqliteOutbox(),
):
    try:
        make()
    except ImportError as exc:
        print(str(exc).split(": ", 1)[1])
    else:
        print("no error")
'''


def test_missing_extras_fail_at_construction_with_the_install_hint() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == [
        "pip install 'clicktrace[redis]'",
        "pip install 'clicktrace[rabbitmq]'",
        "pip install 'clicktrace[nats]'",
        "pip install 'clicktrace[redis]'",
        "pip install 'clicktrace[postgres]'",
        "pip install 'clicktrace[postgres]'",
        "pip install 'clicktrace[sqlite]'",
    ]
