"""Outgoing HTTP with httpx: a CLIENT span per request, and the click's context in its headers.

Headers (``traceparent``, ``tracestate``, ``baggage``, ``x-correlation-id``,
``x-causation-id``, ``x-clicktrace-deadline``) go only to allowed hosts, so trace and
correlation ids never leak to third parties. Allowed are the hosts in ``allowed_hosts``
(exact names, or ``*.example.com`` for subdomains) and, unless ``include_own=False``, the
service's **own** network: loopback (``localhost``, ``127.0.0.0/8``, ``::1``), private IP
literals (``10/8``, ``172.16/12``, ``192.168/16``, ``fc00::/7``) and single-label names such as
``catalog`` (Docker Compose services, Kubernetes services in the same namespace), which only
resolve inside it. Every request gets a span, allowed host or not.

The span ends when the response headers arrive (as OpenTelemetry's httpx instrumentation does).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider

from clicktrace import context as click_context
from clicktrace.propagation import HEADER_KEYS, MAPPING_SETTER, inject
from clicktrace.spans import get_tracer

try:
    import httpx
except ImportError as exc:  # httpx is optional: clicktrace[httpx]
    raise ImportError("clicktrace.httpx needs httpx: pip install 'clicktrace[httpx]'") from exc

__all__ = ["ClicktraceSyncTransport", "ClicktraceTransport", "HostPolicy"]

_SCOPE = "clicktrace.httpx"


class HostPolicy:
    """Which hosts may receive trace and correlation headers (see the module docstring)."""

    def __init__(self, allowed_hosts: Iterable[str] = (), *, include_own: bool = True) -> None:
        if isinstance(allowed_hosts, str):
            raise TypeError("allowed_hosts must be an iterable of host names, not a string")
        names = [h.strip().lower().rstrip(".") for h in allowed_hosts]
        self._exact = frozenset(n for n in names if n and not n.startswith("*."))
        self._suffixes = tuple(n[1:] for n in names if n.startswith("*.") and len(n) > 2)
        self._include_own = include_own

    def allows(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        if host in self._exact or (self._suffixes and host.endswith(self._suffixes)):
            return True
        return self._include_own and _is_own(host)


def _is_own(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return bool(host) and "." not in host and ":" not in host
    return address.is_loopback or address.is_private


def _start(tracer: trace.Tracer, policy: HostPolicy, request: httpx.Request) -> Span:
    url = request.url
    method = request.method.upper()
    attributes: dict[str, str | int] = {
        "http.request.method": method,
        # Without query and credentials: those may carry secrets.
        "url.full": str(url.copy_with(query=None, fragment=None, username=None, password=None)),
        "server.address": url.host,
    }
    if url.port is not None:
        attributes["server.port"] = url.port
    click = click_context.current()
    if click is not None:  # every span of a click is found by the id, third-party calls too
        attributes["clicktrace.correlation_id"] = click.correlation_id
    span = tracer.start_span(method, kind=SpanKind.CLIENT, attributes=attributes)
    if policy.allows(url.host):
        # Without an SDK provider the span is invalid: then pass the caller's context on as is.
        own = trace.set_span_in_context(span) if span.get_span_context().is_valid else None
        inject(request.headers, MAPPING_SETTER, HEADER_KEYS, otel=own)
    return span


def _finish(span: Span, response: httpx.Response) -> None:
    status = response.status_code
    span.set_attribute("http.response.status_code", status)
    version = response.extensions.get("http_version")
    if isinstance(version, bytes) and version.startswith(b"HTTP/"):
        span.set_attribute("network.protocol.version", version[5:].decode("ascii", "replace"))
    if status >= 400:  # for CLIENT spans a 4xx is an error too (HTTP semantic conventions)
        span.set_attribute("error.type", str(status))
        span.set_status(Status(StatusCode.ERROR))
    span.end()


def _fail(span: Span, exc: BaseException) -> None:
    span.set_attribute("error.type", type(exc).__qualname__)
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, type(exc).__qualname__))
    span.end()


class ClicktraceTransport(httpx.AsyncBaseTransport):
    """Wraps an async httpx transport: ``httpx.AsyncClient(transport=ClicktraceTransport())``.

    ``transport`` defaults to ``httpx.AsyncHTTPTransport()``; ``tracer_provider`` to the global
    one. Constructing it changes nothing outside the clients it is given to.
    """

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        allowed_hosts: Iterable[str] = (),
        include_own: bool = True,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self._transport = transport if transport is not None else httpx.AsyncHTTPTransport()
        self._policy = HostPolicy(allowed_hosts, include_own=include_own)
        self._tracer = get_tracer(_SCOPE, tracer_provider=tracer_provider)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        span = _start(self._tracer, self._policy, request)
        try:
            response = await self._transport.handle_async_request(request)
        except BaseException as exc:
            _fail(span, exc)
            raise
        _finish(span, response)
        return response

    async def aclose(self) -> None:
        await self._transport.aclose()


class ClicktraceSyncTransport(httpx.BaseTransport):
    """The same for ``httpx.Client``; ``transport`` defaults to ``httpx.HTTPTransport()``."""

    def __init__(
        self,
        transport: httpx.BaseTransport | None = None,
        *,
        allowed_hosts: Iterable[str] = (),
        include_own: bool = True,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self._transport = transport if transport is not None else httpx.HTTPTransport()
        self._policy = HostPolicy(allowed_hosts, include_own=include_own)
        self._tracer = get_tracer(_SCOPE, tracer_provider=tracer_provider)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        span = _start(self._tracer, self._policy, request)
        try:
            response = self._transport.handle_request(request)
        except BaseException as exc:
            _fail(span, exc)
            raise
        _finish(span, response)
        return response

    def close(self) -> None:
        self._transport.close()
