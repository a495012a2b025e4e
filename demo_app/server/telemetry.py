"""The demo opts in to OpenTelemetry here (the SDK itself never sets global state).

Spans go over OTLP/HTTP when the standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or the traces
variant) is set; otherwise they are recorded and dropped. Clicks that arrive without the
browser's decision are sampled at the ratio ``OTEL_TRACES_SAMPLER`` / ``_ARG`` name
(``clicktrace.sampling.sampler``). Metrics go to a MeterProvider scraped at ``/metrics``.
"""

from __future__ import annotations

import os

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from clicktrace import sampling
from clicktrace.prometheus import prometheus_reader


def setup_tracing(service_name: str = "clicktrace-demo") -> TracerProvider:
    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: service_name}), sampler=sampling.sampler()
    )
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    ):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider


def setup_metrics(service_name: str = "clicktrace-demo") -> MeterProvider:
    """The SDK's metrics (clicktrace.metrics) in a provider that ``/metrics`` serves."""
    provider = MeterProvider(
        metric_readers=[prometheus_reader()], resource=Resource.create({SERVICE_NAME: service_name})
    )
    metrics.set_meter_provider(provider)
    return provider
