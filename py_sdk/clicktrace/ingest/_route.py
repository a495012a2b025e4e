"""``POST /clicktrace/v1/traces``: the browser's spans, re-emitted through the server's pipeline.

Checks run cheapest first, before the body is read: requests per peer address (429), client
token (401), requests per client (429), media type (415); then the body is read up to a cap
(413), decoded and validated (400), and its spans charged to the peer's span budget (429).
Sessions are free to mint, so only the per-peer limits bound what one sender can push into the
server's pipeline. Garbage never yields a 500: the only 5xx is a 503 when the server's own
exporter fails.

The spans' browser stages go to the process journal only for the sender's own clicks, within
its share (``._admission``); the trace pipeline gets every valid span, each stamped with the
verified client id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import msgspec
from opentelemetry import trace
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clicktrace._optional import require
from clicktrace.ids import parse_id
from clicktrace.ingest._admission import Admission, Admitted
from clicktrace.ingest._otlp import BROWSER_SCOPES, MAX_SPANS_PER_REQUEST, decode_request
from clicktrace.journal import Journal
from clicktrace.journal._browser import browser_stages, record_browser_stages
from clicktrace.journal._record import current
from clicktrace.metrics import count_browser_stages
from clicktrace.protocol import (
    CLIENT_HEADER,
    EXPORT_FAILED,
    INVALID_BODY,
    INVALID_CLIENT,
    INVALID_JSON,
    MAX_CLIENT_TOKEN_LENGTH,
    PAYLOAD_TOO_LARGE,
    RATE_LIMITED,
    TOO_MANY_SPANS,
    TRACES_PATH,
    UNSUPPORTED_MEDIA_TYPE,
)
from clicktrace.web._body import read_body
from clicktrace.web._errors import Refusal, correlation_header, refuse, request_correlation_id
from clicktrace.web._limits import PeerOf, RateLimit, RateLimiter, peer_address

if TYPE_CHECKING:  # the SDK is the `sdk` extra, loaded when the route is built
    from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_PEER_RATE",
    "DEFAULT_PEER_SPAN_RATE",
    "TRACES_PATH",
    "browser_traces_route",
]

DEFAULT_MAX_BODY_BYTES = 512 * 1024
# Per peer address (a NAT may hold many tabs; one tab exports a few spans per click).
DEFAULT_PEER_RATE = RateLimit(per_second=10.0, burst=100)
DEFAULT_PEER_SPAN_RATE = RateLimit(per_second=200.0, burst=4 * MAX_SPANS_PER_REQUEST)
_RETRY = {"retry-after": "1"}
_PEER_LIMITED = Refusal(429, RATE_LIMITED, "too many trace exports from this address")
_NO_CLIENT = Refusal(401, INVALID_CLIENT, "a valid x-clicktrace-client token is required")
_CLIENT_LIMITED = Refusal(429, RATE_LIMITED, "too many trace exports")
_MEDIA_TYPE = Refusal(415, UNSUPPORTED_MEDIA_TYPE, "send uncompressed OTLP/JSON")
_NOT_JSON = Refusal(400, INVALID_JSON, "body is not JSON")
_PEER_SPANS_LIMITED = Refusal(429, RATE_LIMITED, "too many spans from this address")
_EXPORT_FAILED = Refusal(503, EXPORT_FAILED, "the trace pipeline refused the spans")
# text/plain lets navigator.sendBeacon post without a CORS preflight.
_MEDIA_TYPES = frozenset({"application/json", "text/plain"})
SERVICE_NAME = "service.name"
DEFAULT_SERVICE_NAME = "browser"
_DEFAULT_SERVICE = {SERVICE_NAME: DEFAULT_SERVICE_NAME}

_log = logging.getLogger(__name__)


def _emitter(
    span_processor: SpanProcessor | None,
    exporter: SpanExporter | None,
    tracer_provider: TracerProvider | None,
) -> Callable[[Sequence[ReadableSpan]], bool]:
    from opentelemetry.sdk.trace import SpanProcessor
    from opentelemetry.sdk.trace.export import SpanExportResult

    if exporter is not None:
        chosen = exporter

        def export(spans: Sequence[ReadableSpan]) -> bool:
            return chosen.export(spans) is SpanExportResult.SUCCESS

        return export

    def process(spans: Sequence[ReadableSpan]) -> bool:
        processor = span_processor
        if processor is None:
            # Resolved per request, so the app may install its provider after building routes.
            # The SDK exposes no public accessor for a provider's processors.
            provider = tracer_provider or trace.get_tracer_provider()
            processor = getattr(provider, "_active_span_processor", None)
        if isinstance(processor, SpanProcessor):
            for span in spans:
                processor.on_end(span)
        return True  # without an SDK provider tracing is off: accepted, like a no-op span

    return process


def browser_traces_route(
    *,
    client_verifier: Callable[[str], str | None] | None,
    allow_anonymous: bool = False,
    span_processor: SpanProcessor | None = None,
    exporter: SpanExporter | None = None,
    tracer_provider: TracerProvider | None = None,
    service_name: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    rate: RateLimit | None = None,
    peer_rate: RateLimit | None = DEFAULT_PEER_RATE,
    peer_span_rate: RateLimit | None = DEFAULT_PEER_SPAN_RATE,
    peer_of: PeerOf = peer_address,
    scopes: frozenset[str] = BROWSER_SCOPES,
    path: str = TRACES_PATH,
) -> Route:
    """A Starlette route accepting OTLP/JSON traces from the browser SDK.

    ``client_verifier`` maps an ``x-clicktrace-client`` token to its client id (``None`` when
    invalid). Spans go to ``span_processor``, or ``exporter``, or the active span processor of
    ``tracer_provider`` (default: the global SDK provider). Their resource keeps the
    ``service.name`` the plugin sent (its ``serviceName``; ``browser`` when it sent none);
    ``service_name`` replaces it for every sender. For verified senders, every span and its resource
    carry ``clicktrace.client_id`` (never the payload's). Only spans of an instrumentation
    scope in ``scopes`` and of a browser's kinds are taken (others count as rejected).
    ``rate`` applies per client id (with ``allow_anonymous``, senders without a valid token
    share one bucket per peer); ``peer_rate`` (requests) and ``peer_span_rate`` (spans) per
    ``peer_of(scope)``: behind a proxy, see :mod:`clicktrace.web._limits`. ``None`` turns a
    per-peer limit off.
    """
    if client_verifier is None and not allow_anonymous:
        raise ValueError("pass client_verifier, or allow_anonymous=True to accept any sender")
    if sum(x is not None for x in (span_processor, exporter, tracer_provider)) > 1:
        raise ValueError("pass at most one of span_processor, exporter, tracer_provider")
    if max_body_bytes < 1:
        raise ValueError("max_body_bytes must be positive")
    require("opentelemetry.sdk.trace", "sdk", package="opentelemetry-sdk")
    emit = _emitter(span_processor, exporter, tracer_provider)
    too_large = Refusal(413, PAYLOAD_TOO_LARGE, f"body over {max_body_bytes} bytes")
    limiter = RateLimiter(rate or RateLimit())
    peers = RateLimiter(peer_rate) if peer_rate is not None else None
    peer_spans = RateLimiter(peer_span_rate) if peer_span_rate is not None else None
    admission = Admission()
    forced = {SERVICE_NAME: service_name} if service_name is not None else {}

    def verify(token: str | None) -> str | None:
        if client_verifier is None or not token or len(token) > MAX_CLIENT_TOKEN_LENGTH:
            return None
        try:
            return parse_id(client_verifier(token))
        except Exception:  # a verifier choking on a hostile token must not become a 500
            _log.warning("client_verifier raised; token treated as invalid", exc_info=True)
            return None

    async def journal_stages(spans: Sequence[ReadableSpan], client_id: str | None) -> None:
        """The journal's browser stages: only the client's own clicks, within its share."""
        journal = current()
        if not isinstance(journal, Journal):
            return  # no journal: nothing is recorded, and nothing could say whose clicks
        stages = [stage for span in spans for stage in browser_stages(span)]
        if not stages:
            return
        if client_id is None:
            count_browser_stages({"anonymous": len(stages)})
            return
        try:
            admitted = await admission.admit(journal, client_id, stages)
        except Exception as exc:  # the spans still reach the trace pipeline
            _log.warning("clicktrace ingest: browser stages not journaled (%s)", type(exc).__name__)
            admitted = Admitted()
            admitted.count("journal_unavailable", len(stages))
        record_browser_stages(admitted.stages, client_id)
        count_browser_stages(admitted.counts)

    async def endpoint(request: Request) -> Response:
        correlation_id = request_correlation_id(request.scope)
        peer = peer_of(request.scope)
        if peers is not None and not peers.allow(peer):
            return refuse(_PEER_LIMITED, correlation_id, _RETRY)
        client_id = verify(request.headers.get(CLIENT_HEADER))
        if client_id is None and not allow_anonymous:
            return refuse(_NO_CLIENT, correlation_id)
        if not limiter.allow(client_id or f"anonymous:{peer}"):
            return refuse(_CLIENT_LIMITED, correlation_id, _RETRY)
        media = request.headers.get("content-type", "application/json").split(";")[0]
        encoding = request.headers.get("content-encoding", "identity")
        if media.strip().lower() not in _MEDIA_TYPES or encoding.lower() != "identity":
            return refuse(_MEDIA_TYPE, correlation_id)
        body = await read_body(request, max_body_bytes)
        if isinstance(body, Refusal):
            return refuse(too_large if body.status == 413 else body, correlation_id)
        try:
            data: Any = msgspec.json.decode(body)
        except (msgspec.DecodeError, RecursionError):
            return refuse(_NOT_JSON, correlation_id)
        decoded = decode_request(
            data, forced, defaults=_DEFAULT_SERVICE, client_id=client_id, scopes=scopes
        )
        if decoded.invalid is not None:
            status, code = (413, TOO_MANY_SPANS) if decoded.too_many else (400, INVALID_BODY)
            return refuse(Refusal(status, code, decoded.invalid), correlation_id)
        if (
            peer_spans is not None
            and decoded.spans
            and not peer_spans.allow(peer, len(decoded.spans))
        ):
            return refuse(_PEER_SPANS_LIMITED, correlation_id, _RETRY)
        if decoded.spans:
            await journal_stages(decoded.spans, client_id)
        if decoded.spans and not await run_in_threadpool(emit, decoded.spans):
            return refuse(_EXPORT_FAILED, correlation_id)
        partial: dict[str, Any] = {}
        if decoded.rejected:
            # proto3 JSON writes int64 as a string
            partial = {
                "rejectedSpans": str(decoded.rejected),
                "errorMessage": "spans that did not validate were dropped",
            }
        response = JSONResponse({"partialSuccess": partial})
        response.raw_headers.append(correlation_header(correlation_id))
        return response

    return Route(path, endpoint, methods=["POST"])
