"""`python -m demo_app.server`: serve the catalogue (``make demo`` does this)."""

from __future__ import annotations

import logging

import uvicorn

from .app import create_app
from .settings import Settings
from .telemetry import setup_tracing


def main() -> None:
    settings = Settings.from_env()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    provider = setup_tracing()
    app = create_app(settings, tracer_provider=provider)
    print(f"clicktrace demo on http://{settings.host}:{settings.port} "
          f"(bus {settings.bus_url}, data in {settings.data_dir})", flush=True)
    try:
        # Clients send only small hello frames; refuse anything bigger at the protocol level.
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning",
                    ws_max_size=16 * 1024)
    finally:
        provider.shutdown()


if __name__ == "__main__":
    main()
