"""The journal's store kinds for tests: each kind's URL (the real Redis and PostgreSQL on
loopback) and the cleanup of what a test's store created under its unique name."""

from __future__ import annotations

from pathlib import Path

REDIS = "redis://127.0.0.1:6379/0"
PG = "postgresql://postgres@127.0.0.1:5432/test"
KINDS = ["memory", "sqlite", "redis", "postgres"]


def url_for(kind: str, tmp_path: Path) -> str:
    return {
        "memory": "memory://",
        "sqlite": f"sqlite:///{tmp_path}/j.sqlite3",
        "redis": REDIS,
        "postgres": PG,
    }[kind]


async def drop(kind: str, name: str) -> None:
    """Remove the keys (Redis) or tables (PostgreSQL) a store named ``name`` created."""
    if kind == "redis":
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(REDIS)
        keys = [k async for k in client.scan_iter(match=f"{name}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
    elif kind == "postgres":
        import asyncpg

        conn = await asyncpg.connect(PG)
        for table in (name, f"{name}_open", f"{name}_processes", f"{name}_dead"):
            await conn.execute(f"DROP TABLE IF EXISTS {table}")
        await conn.close()
