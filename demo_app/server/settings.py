"""Demo settings, from the environment, with embedded defaults (in-memory bus, SQLite)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

ROOT = Path(__file__).resolve().parents[2]
# Requests that open no trace besides what clicktrace.install leaves untraced by default (its
# own routes, the built page and its assets): the fault panel, the page's config, the scrape.
EXCLUDED_PATHS = (r"^/api/(faults|config)$", r"^/metrics$")


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = ROOT / "data"
    bus_url: str = "memory://"
    """``memory://`` (default), ``redis://…``, ``amqp://…`` or ``nats://…``."""
    topic: str = "products"
    """The bus topic of catalogue events (several demos can share one broker)."""
    transport: Literal["socketio", "websocket"] = "socketio"
    """How notifications reach the browser: ``socketio`` or ``websocket``."""
    secret: bytes | None = None
    """HMAC secret for client tokens; ``None`` makes a random one at start."""
    web_dist: Path = ROOT / "demo_app" / "web" / "dist"
    excluded_paths: tuple[str, ...] = EXCLUDED_PATHS
    """Paths whose requests open no trace (``CLICKTRACE_EXCLUDED_PATHS``, comma-separated)."""
    database_url: str | None = None
    """``postgresql://…``: the event store and read model in PostgreSQL (else SQLite)."""
    pg_schema: str = "clicktrace_demo"
    redis_url: str | None = None
    """Joins the processes: socket fan-out between nodes, the replay buffer, the faults."""
    channel: str = "clicktrace"
    """Fan-out channel and key prefix (several demos can share one Redis)."""
    process: str = "demo"
    """This process's name in logs, spans and the journal (``api-1``, ``relay``, ...)."""
    faults: bool = False
    """Serve the fault panel and its route ``/api/faults`` (``CLICKTRACE_FAULTS=1``; off by
    default: a fault stops the projection). It needs ``operator_token``."""
    operator_token: str | None = None
    """``CLICKTRACE_OPERATOR_TOKEN``: the bearer token of the fault route and of the journal
    route's operator view. The demo refuses to start with faults on and no token."""
    trace_url: str | None = None
    """A trace UI link template, e.g. ``http://127.0.0.1:16686/trace/{trace_id}``."""
    journal_url: str = "memory://"
    """Where the journal is kept (``CLICKTRACE_JOURNAL_URL``): ``memory://`` (one process),
    ``sqlite:///…``, ``redis://…``, ``postgresql://…`` (shared by the processes). The
    journal route's operator token is ``CLICKTRACE_OPERATOR_TOKEN``."""

    def __post_init__(self) -> None:
        if self.faults and not self.operator_token:
            raise ValueError("the fault panel needs an operator token (CLICKTRACE_OPERATOR_TOKEN)")

    @property
    def database(self) -> Path:
        return self.data_dir / "catalogue.sqlite3"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        default = cls()
        secret = env.get("CLICKTRACE_SECRET")
        transport = env.get("CLICKTRACE_TRANSPORT", default.transport)
        if transport not in ("socketio", "websocket"):
            raise ValueError(
                f"CLICKTRACE_TRANSPORT must be socketio or websocket, not {transport!r}"
            )
        return cls(
            host=env.get("HOST", default.host),
            port=int(env.get("PORT", str(default.port))),
            data_dir=Path(env.get("DATA_DIR", str(default.data_dir))),
            bus_url=env.get("CLICKTRACE_BUS_URL", default.bus_url),
            topic=env.get("CLICKTRACE_TOPIC", default.topic),
            transport=cast(Literal["socketio", "websocket"], transport),
            secret=secret.encode() if secret else None,
            excluded_paths=tuple(
                p.strip() for p in env["CLICKTRACE_EXCLUDED_PATHS"].split(",") if p.strip()
            )
            if "CLICKTRACE_EXCLUDED_PATHS" in env
            else default.excluded_paths,
            database_url=env.get("CLICKTRACE_DATABASE_URL") or None,
            pg_schema=env.get("CLICKTRACE_PG_SCHEMA", default.pg_schema),
            redis_url=env.get("CLICKTRACE_REDIS_URL") or None,
            channel=env.get("CLICKTRACE_CHANNEL", default.channel),
            process=env.get("CLICKTRACE_PROCESS", default.process),
            faults=env.get("CLICKTRACE_FAULTS", "0") == "1",
            operator_token=env.get("CLICKTRACE_OPERATOR_TOKEN") or None,
            trace_url=env.get("CLICKTRACE_TRACE_URL") or None,
            journal_url=env.get("CLICKTRACE_JOURNAL_URL", default.journal_url),
        )
