from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.applications import Starlette

from clicktrace.ids import new_id
from clicktrace.ingest import browser_traces_route
from clicktrace.notify import TokenSigner
from clicktrace.web import RateLimit

CLIENT_ID = new_id()
TOKEN = "signed-token-for-the-tab"
URL = "http://api.test/clicktrace/v1/traces"


def verifier(token: str) -> str | None:
    return CLIENT_ID if token == TOKEN else None


def make_app(exporter: SpanExporter, **options: Any) -> Starlette:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    options.setdefault("client_verifier", verifier)
    return Starlette(routes=[browser_traces_route(tracer_provider=provider, **options)])


def client(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app))


async def test_valid_request_reemits_spans_in_the_browser_trace(
    valid_body: dict[str, Any],
) -> None:
    exporter = InMemorySpanExporter()
    async with client(make_app(exporter)) as http:
        response = await http.post(URL, json=valid_body, headers={"x-clicktrace-client": TOKEN})
    assert response.status_code == 200
    assert response.json() == {"partialSuccess": {}}
    assert len(response.headers["x-correlation-id"]) == 26
    root, child = exporter.get_finished_spans()
    assert root.context is not None and child.context is not None and child.parent is not None
    assert root.context.trace_id == child.context.trace_id == 0x4BF92F3577B34DA6A3CE929D0E0E4736
    assert child.parent.span_id == root.context.span_id == 0x00F067AA0BA902B7
    assert root.resource.attributes["service.name"] == "demo-web"  # the plugin's serviceName
    assert root.resource.attributes["clicktrace.client_id"] == CLIENT_ID


async def test_rejected_spans_are_reported_as_partial_success(
    valid_body: dict[str, Any],
) -> None:
    valid_body["resourceSpans"][0]["scopeSpans"][0]["spans"][1]["spanId"] = "nothex"
    exporter = InMemorySpanExporter()
    async with client(make_app(exporter)) as http:
        response = await http.post(URL, json=valid_body, headers={"x-clicktrace-client": TOKEN})
    assert response.status_code == 200
    assert response.json()["partialSuccess"]["rejectedSpans"] == "1"
    assert [s.name for s in exporter.get_finished_spans()] == ["rename product"]


class RecordingExporter(SpanExporter):
    def __init__(self, result: SpanExportResult) -> None:
        self.result = result
        self.batches: list[list[str]] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.batches.append([s.name for s in spans])
        return self.result


@pytest.mark.parametrize(
    ("result", "status"), [(SpanExportResult.SUCCESS, 200), (SpanExportResult.FAILURE, 503)]
)
async def test_an_explicit_exporter_gets_one_batch(
    valid_body: dict[str, Any], result: SpanExportResult, status: int
) -> None:
    exporter = RecordingExporter(result)
    app = Starlette(routes=[browser_traces_route(client_verifier=verifier, exporter=exporter)])
    async with client(app) as http:
        response = await http.post(URL, json=valid_body, headers={"x-clicktrace-client": TOKEN})
    assert response.status_code == status
    assert exporter.batches == [["rename product", "POST /api/products/1/rename"]]


@pytest.mark.parametrize(
    ("headers", "content", "status", "code"),
    [
        ({}, b"{}", 401, "invalid_client"),
        ({"x-clicktrace-client": "forged"}, b"{}", 401, "invalid_client"),
        (
            {"x-clicktrace-client": TOKEN, "content-type": "application/x-protobuf"},
            b"\x0a",
            415,
            "unsupported_media_type",
        ),
        (
            {"x-clicktrace-client": TOKEN, "content-encoding": "gzip"},
            b"{}",
            415,
            "unsupported_media_type",
        ),
        ({"x-clicktrace-client": TOKEN}, b"{not json", 400, "invalid_json"),
        ({"x-clicktrace-client": TOKEN}, b"[" * 2000, 400, "invalid_json"),
        ({"x-clicktrace-client": TOKEN}, b'{"resourceSpans": 5}', 400, "invalid_body"),
        ({"x-clicktrace-client": TOKEN}, b" " * 2049, 413, "payload_too_large"),
    ],
)
async def test_bad_requests_get_the_protocol_error_shape(
    headers: dict[str, str], content: bytes, status: int, code: str
) -> None:
    exporter = InMemorySpanExporter()
    app = make_app(exporter, max_body_bytes=2048)
    correlation_id = new_id()
    async with client(app) as http:
        response = await http.post(
            URL,
            content=content,
            headers={
                "content-type": "application/json",
                "x-correlation-id": correlation_id,
                **headers,
            },
        )
    assert response.status_code == status
    assert response.json() == {
        "error": {"code": code, "message": response.json()["error"]["message"]},
        "correlation_id": correlation_id,
    }
    assert response.headers["x-correlation-id"] == correlation_id
    assert exporter.get_finished_spans() == ()


async def test_a_streamed_body_over_the_cap_is_cut_off() -> None:
    async def chunks() -> Any:
        for _ in range(10):
            yield b" " * 1000

    async with client(make_app(InMemorySpanExporter(), max_body_bytes=4096)) as http:
        response = await http.post(URL, content=chunks(), headers={"x-clicktrace-client": TOKEN})
    assert response.status_code == 413


async def test_rate_limited_per_client_token(valid_body: dict[str, Any]) -> None:
    other_id = new_id()
    app = make_app(
        InMemorySpanExporter(),
        rate=RateLimit(per_second=1e-9, burst=2),
        client_verifier=lambda t: {TOKEN: CLIENT_ID, "other": other_id}.get(t),
    )
    async with client(app) as http:
        statuses = [
            (
                await http.post(URL, json=valid_body, headers={"x-clicktrace-client": TOKEN})
            ).status_code
            for _ in range(3)
        ]
        other = await http.post(URL, json=valid_body, headers={"x-clicktrace-client": "other"})
    assert statuses == [200, 200, 429]
    assert other.status_code == 200


async def test_anonymous_senders_when_allowed(valid_body: dict[str, Any]) -> None:
    exporter = InMemorySpanExporter()
    app = make_app(exporter, client_verifier=None, allow_anonymous=True)
    async with client(app) as http:
        response = await http.post(URL, json=valid_body)
    assert response.status_code == 200
    assert "clicktrace.client_id" not in exporter.get_finished_spans()[0].resource.attributes


async def test_a_raising_verifier_is_an_invalid_token() -> None:
    def broken(token: str) -> str | None:
        raise ValueError("bad padding")

    async with client(make_app(InMemorySpanExporter(), client_verifier=broken)) as http:
        response = await http.post(URL, json={}, headers={"x-clicktrace-client": "x"})
    assert response.status_code == 401


def test_configuration_errors() -> None:
    with pytest.raises(ValueError, match="allow_anonymous"):
        browser_traces_route(client_verifier=None)
    with pytest.raises(ValueError, match="at most one"):
        browser_traces_route(
            client_verifier=verifier,
            exporter=InMemorySpanExporter(),
            tracer_provider=TracerProvider(),
        )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "resourceSpans",
                    "scopeSpans",
                    "spans",
                    "traceId",
                    "spanId",
                    "kind",
                    "startTimeUnixNano",
                    "endTimeUnixNano",
                    "attributes",
                    "value",
                ]
            )
            | st.text(max_size=8),
            inner,
            max_size=4,
        )
    ),
    max_leaves=25,
)


def test_arbitrary_json_never_yields_a_500() -> None:
    app = make_app(
        InMemorySpanExporter(),
        rate=RateLimit(per_second=1e9, burst=10**9),
        peer_rate=None,
        peer_span_rate=None,
    )
    # One loop and one client for all examples (a sync test, since hypothesis drives it).
    with asyncio.Runner() as runner:
        http = client(app)

        @settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
        @given(json_values)
        def post(body: Any) -> None:
            response = runner.run(
                http.post(URL, content=json.dumps(body), headers={"x-clicktrace-client": TOKEN})
            )
            assert response.status_code in (200, 400, 413)
            assert ("partialSuccess" in response.json()) == (response.status_code == 200)

        post()
        runner.run(http.aclose())


async def test_without_any_sdk_provider_spans_are_accepted_and_dropped(
    valid_body: dict[str, Any],
) -> None:
    # The tests never install a global provider: the global one is the API's proxy, which has
    # no span processor, just as in an app that has tracing switched off.
    app = Starlette(routes=[browser_traces_route(client_verifier=verifier)])
    async with client(app) as http:
        response = await http.post(URL, json=valid_body, headers={"x-clicktrace-client": TOKEN})
    assert response.status_code == 200 and response.json() == {"partialSuccess": {}}


async def test_minting_sessions_does_not_multiply_the_rate(valid_body: dict[str, Any]) -> None:
    # The finding: 65 sessions in 20 s gave 1,300 exports and no 429. Every session has its
    # own per-client bucket; the peer's bucket is shared by all of them.
    signer = TokenSigner("a-secret-of-at-least-sixteen-bytes")
    exporter = InMemorySpanExporter()
    app = make_app(
        exporter, client_verifier=signer.verify, peer_rate=RateLimit(per_second=1e-9, burst=30)
    )
    async with client(app) as http:
        statuses = [
            (
                await http.post(
                    URL, json=valid_body, headers={"x-clicktrace-client": signer.issue().token}
                )
            ).status_code
            for _ in range(65)
        ]
    assert statuses.count(200) == 30 and statuses[30:] == [429] * 35
    assert len(exporter.get_finished_spans()) == 60


async def test_spans_per_peer_are_bounded(valid_body: dict[str, Any]) -> None:
    signer = TokenSigner("a-secret-of-at-least-sixteen-bytes")
    exporter = InMemorySpanExporter()
    app = make_app(
        exporter, client_verifier=signer.verify, peer_span_rate=RateLimit(per_second=1e-9, burst=5)
    )
    async with client(app) as http:
        answers = [
            await http.post(
                URL, json=valid_body, headers={"x-clicktrace-client": signer.issue().token}
            )
            for _ in range(3)
        ]
    assert [a.status_code for a in answers] == [200, 200, 429]  # 2 spans each, 5 allowed
    assert answers[2].json()["error"]["code"] == "rate_limited"
    assert answers[2].headers["retry-after"] == "1"
    assert len(exporter.get_finished_spans()) == 4


async def test_peers_are_told_apart_by_the_configured_peer_of(
    valid_body: dict[str, Any],
) -> None:
    def peer_of(scope: Any) -> str:
        return str(dict(scope["headers"]).get(b"x-test-peer", b"").decode())

    app = make_app(
        InMemorySpanExporter(),
        rate=RateLimit(per_second=1e9, burst=10**9),
        peer_rate=RateLimit(per_second=1e-9, burst=1),
        peer_of=peer_of,
    )
    async with client(app) as http:
        statuses = [
            (
                await http.post(
                    URL,
                    json=valid_body,
                    headers={"x-clicktrace-client": TOKEN, "x-test-peer": peer},
                )
            ).status_code
            for peer in ("a", "b", "a")
        ]
    assert statuses == [200, 200, 429]


async def test_a_server_span_in_the_servers_scope_is_not_taken(
    valid_body: dict[str, Any],
) -> None:
    exporter = InMemorySpanExporter()
    scope_spans = valid_body["resourceSpans"][0]["scopeSpans"][0]
    scope_spans["spans"] = scope_spans["spans"][:1]
    scope_spans["spans"][0].update(name="POST /api/products/{id}/rename", kind=2)
    server_kind = copy.deepcopy(valid_body)
    forged = copy.deepcopy(valid_body)
    forged["resourceSpans"][0]["scopeSpans"][0]["scope"] = {
        "name": "opentelemetry.instrumentation.asgi"
    }
    forged["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["kind"] = 1
    async with client(make_app(exporter)) as http:
        answers = [
            await http.post(URL, json=body, headers={"x-clicktrace-client": TOKEN})
            for body in (forged, server_kind)
        ]
    assert [a.json()["partialSuccess"]["rejectedSpans"] for a in answers] == ["1", "1"]
    assert exporter.get_finished_spans() == ()


async def test_every_span_carries_the_verified_client_id(valid_body: dict[str, Any]) -> None:
    other = {"key": "clicktrace.client_id", "value": {"stringValue": new_id()}}
    for span in valid_body["resourceSpans"][0]["scopeSpans"][0]["spans"]:
        span["attributes"].append(other)
    exporter = InMemorySpanExporter()
    async with client(make_app(exporter)) as http:
        await http.post(URL, json=valid_body, headers={"x-clicktrace-client": TOKEN})
    spans = exporter.get_finished_spans()
    assert len(spans) == 2
    assert all((s.attributes or {})["clicktrace.client_id"] == CLIENT_ID for s in spans)


async def test_the_plugins_service_name_is_kept_and_browser_stands_in_for_none(
    valid_body: dict[str, Any],
) -> None:
    unnamed = copy.deepcopy(valid_body)
    unnamed["resourceSpans"][0]["resource"]["attributes"] = [
        {"key": "service.name", "value": {"intValue": "7"}}  # not a name: the default stands in
    ]
    exporter = InMemorySpanExporter()
    async with client(make_app(exporter)) as http:
        for body in (valid_body, unnamed):
            await http.post(URL, json=body, headers={"x-clicktrace-client": TOKEN})
    names = [s.resource.attributes["service.name"] for s in exporter.get_finished_spans()]
    assert names == ["demo-web", "demo-web", "browser", "browser"]


async def test_a_service_name_given_to_the_route_wins_for_every_tab(
    valid_body: dict[str, Any],
) -> None:
    exporter = InMemorySpanExporter()
    async with client(make_app(exporter, service_name="shop-web")) as http:
        await http.post(URL, json=valid_body, headers={"x-clicktrace-client": TOKEN})
    assert {s.resource.attributes["service.name"] for s in exporter.get_finished_spans()} == {
        "shop-web"
    }
