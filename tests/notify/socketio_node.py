"""A uvicorn process serving a Socket.IO :class:`Notifier`, for the shutdown test.

Run: ``python socketio_node.py PORT GRACE_SECONDS`` (``0``: no graceful-shutdown timeout).
Engine.IO's polls are held for ten minutes here (a ping every 600 s), so without a timeout
uvicorn's graceful shutdown would wait that long for each poll in flight.
"""

from __future__ import annotations

import sys

import uvicorn
from starlette.applications import Starlette

from clicktrace.notify import Notifier, SocketIOTransport, TokenSigner

SECRET = "clicktrace-test-secret-0123456789"


def main() -> None:
    port, grace = int(sys.argv[1]), int(sys.argv[2])
    notifier = Notifier(TokenSigner(SECRET), SocketIOTransport())
    notifier.sio.eio.ping_interval = 600
    app = notifier.asgi(Starlette(routes=notifier.routes))
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=grace or None,
    )


if __name__ == "__main__":
    main()
