"""clicktrace.prometheus: the SDK's metrics scraped in the Prometheus text format."""

from __future__ import annotations

import httpx
from opentelemetry.sdk.metrics import MeterProvider
from starlette.applications import Starlette

from clicktrace import metrics
from clicktrace.ids import new_id
from clicktrace.journal import record
from clicktrace.prometheus import metrics_route, prometheus_reader


async def test_a_scrape_shows_the_clicktrace_and_messaging_metrics_with_units() -> None:
    reader = prometheus_reader()
    provider = MeterProvider(metric_readers=[reader])
    metrics.use(provider)
    try:
        cid = new_id()
        record("accepted", correlation_id=cid)
        record("published", correlation_id=cid, duration_ms=12.0)
        record("settled", correlation_id=cid, outcome="confirmed", duration_ms=480.0)
        app = Starlette(routes=[metrics_route()])
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        ) as client:
            response = await client.get("/metrics")
    finally:
        metrics.use(None)
        provider.shutdown()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'clicktrace_commands_total{clicktrace_outcome="accepted"' in text
    assert "messaging_client_sent_messages_total" in text
    assert 'clicktrace_click_duration_seconds_count{clicktrace_outcome="confirmed"' in text
    assert "clicktrace_accept_to_publish_duration_seconds_sum" in text
