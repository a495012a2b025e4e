"""``GET /clicktrace/health`` for a process without HTTP (an outbox relay, a consumer).

A load balancer or an orchestrator probes every process the same way; a worker has no web
framework to mount a route on, and should not need one. :func:`serve` answers that one
request on asyncio streams: the same document, the same anonymous / operator rule and the
same once-per-interval runs as the app's route (:class:`~clicktrace.health._report.Report`).
Everything else gets a short error; one connection, one answer, then it is closed.

    async with await serve([bus_check(bus), journal_check(journal)], "0.0.0.0", 8081):
        await stopped.wait()        # the listener closes on the way out
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

from clicktrace.health._checks import Check
from clicktrace.health._report import DEFAULT_INTERVAL, DEFAULT_TIMEOUT, HEALTH_PATH, Report
from clicktrace.protocol import INVALID_REQUEST, METHOD_NOT_ALLOWED, NOT_FOUND

__all__ = ["MAX_CONNECTIONS", "MAX_REQUEST_HEAD", "READ_TIMEOUT", "HealthListener", "serve"]

MAX_REQUEST_HEAD = 8 * 1024
"""Bytes of request line and headers read at most (a probe sends a few hundred)."""
READ_TIMEOUT = 5.0
"""Seconds a client has to send its request head."""
MAX_CONNECTIONS = 64
"""Connections served at once; more are closed unanswered."""

_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}


def _error(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


_NOT_FOUND = _error(NOT_FOUND, "only GET /clicktrace/health is served here")
_NOT_ALLOWED = _error(METHOD_NOT_ALLOWED, "only GET and HEAD")
_BAD_REQUEST = _error(INVALID_REQUEST, "not an HTTP/1.x request")
_TOO_LARGE = _error(INVALID_REQUEST, "the request head is too large")


_PLAIN = [("content-type", "application/json"), ("cache-control", "no-store")]


def _response(
    status: int, body: bytes, head_only: bool, headers: list[tuple[str, str]] = _PLAIN
) -> bytes:
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers)
    head = (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\n{lines}"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode()
    return head if head_only else head + body


class _Listener:
    def __init__(self, report: Report, path: str) -> None:
        self._report = report
        self._path = path
        self._open: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._closing = False

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if self._closing or len(self._open) >= MAX_CONNECTIONS or task is None:
            writer.close()
            return
        self._open[task] = writer
        try:
            reply = await self._reply(reader)
            if reply:
                writer.write(reply)
                await writer.drain()
        except (ConnectionError, TimeoutError):
            pass  # the client went away or never finished: nothing to answer
        finally:
            del self._open[task]
            writer.close()

    async def close_connections(self) -> None:
        """Ends every open connection: a request not yet read gets no answer."""
        self._closing = True  # a connection accepted before the close but not yet handled
        for writer in self._open.values():
            writer.close()  # the pending read ends, and with it the handler
        await asyncio.gather(*self._open, return_exceptions=True)

    async def _reply(self, reader: asyncio.StreamReader) -> bytes | None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
        except asyncio.LimitOverrunError:
            return _response(431, _TOO_LARGE, False)
        except asyncio.IncompleteReadError:
            return None
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            return _response(400, _BAD_REQUEST, False)
        method, target = parts[0], parts[1]
        head_only = method == "HEAD"
        if target.split("?", 1)[0] != self._path:
            return _response(404, _NOT_FOUND, head_only)
        if method not in ("GET", "HEAD"):
            return _response(405, _NOT_ALLOWED, False, [*_PLAIN, ("allow", "GET, HEAD")])
        authorization = None
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep and name.strip().lower() == "authorization":
                authorization = value.strip()
                break
        code, body = await self._report.answer(authorization)
        return _response(code, body, head_only, self._report.headers(code))


class HealthListener:
    """A running health listener (see :func:`serve`); an async context manager that closes
    it on the way out."""

    def __init__(self, server: asyncio.Server, listener: _Listener) -> None:
        self._server = server
        self._listener = listener
        self.port: int = server.sockets[0].getsockname()[1]
        """The port it listens on (the one the OS chose for port 0)."""

    async def aclose(self) -> None:
        """Stops listening and ends the connections still open."""
        self._server.close()
        await self._listener.close_connections()
        await self._server.wait_closed()

    async def __aenter__(self) -> HealthListener:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


async def serve(
    checks: Sequence[Check],
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = DEFAULT_INTERVAL,
    operator_token: str | None = None,
    path: str = HEALTH_PATH,
) -> HealthListener:
    """Listen on ``host``:``port`` (0: a free port, see :attr:`HealthListener.port`) and
    answer ``GET path`` with the health of ``checks``, as
    :func:`~clicktrace.health.health_route` does. Close the returned listener (``aclose``,
    or use it as an async context manager) to stop."""
    report = Report(checks, timeout=timeout, interval=interval, operator_token=operator_token)
    listener = _Listener(report, path)
    server = await asyncio.start_server(listener.handle, host, port, limit=MAX_REQUEST_HEAD)
    return HealthListener(server, listener)
