"""``python -m demo_app.server [all|api|relay|projection]``: one process of the catalogue.

``all`` (the default, ``make demo``) is the whole demo in one process; the others are the
processes of ``make demo-distributed`` (see ``Procfile``). ``relay`` and ``projection`` serve
their health on ``CLICKTRACE_HEALTH_PORT`` when it is set (the API nodes on their own port).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Mapping

import uvicorn

from clicktrace.journal import set_process

from .app import create_app
from .settings import Settings
from .telemetry import setup_metrics, setup_tracing
from .wiring import setup_logging
from .worker import run_projection, run_relay

ROLES = ("all", "api", "relay", "projection")
log = logging.getLogger("demo")
HEALTH_PORT_ENV = "CLICKTRACE_HEALTH_PORT"


def health_port(env: Mapping[str, str] = os.environ) -> int | None:
    """The worker's health port from the environment (unset or empty: no listener)."""
    raw = env.get(HEALTH_PORT_ENV, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 0 <= int(raw) <= 65535:
        raise SystemExit(f"{HEALTH_PORT_ENV} must be a port number, not {raw!r}")
    return int(raw)


def main(argv: list[str]) -> None:
    role = argv[0] if argv else "all"
    if role not in ROLES:
        raise SystemExit(f"usage: python -m demo_app.server [{'|'.join(ROLES)}]")
    settings = Settings.from_env()
    port = health_port()
    setup_logging(settings.process)
    set_process(settings.process)  # the journal's name for this process, as the logs'
    provider = setup_tracing(f"clicktrace-demo-{settings.process}")
    meters = setup_metrics(f"clicktrace-demo-{settings.process}")
    try:
        if role == "relay":
            asyncio.run(run_relay(settings, provider, port))
        elif role == "projection":
            asyncio.run(run_projection(settings, provider, port))
        else:
            app = create_app(settings, tracer_provider=provider, embedded=role == "all")
            log.info(
                "clicktrace demo %s on http://%s:%d (bus %s)",
                settings.process,
                settings.host,
                settings.port,
                settings.bus_url.split("@")[-1],
            )
            # Clients send only small hello frames; refuse anything bigger at the protocol
            # level. Socket.IO long polls would each hold a graceful shutdown until their
            # next ping (25 s): after 5 s uvicorn cancels them, so SIGTERM always stops.
            uvicorn.run(
                app,
                host=settings.host,
                port=settings.port,
                log_level="warning",
                ws_max_size=16 * 1024,
                timeout_graceful_shutdown=5,
                log_config=None,
            )  # uvicorn logs as JSON too
    finally:
        provider.shutdown()
        meters.shutdown()


if __name__ == "__main__":
    main(sys.argv[1:])
