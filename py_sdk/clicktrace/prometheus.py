"""A Prometheus scrape endpoint for the SDK's metrics (the ``prometheus`` extra).

.. code-block:: python

    provider = MeterProvider(metric_readers=[prometheus_reader()])
    metrics.set_meter_provider(provider)
    app = Starlette(routes=[metrics_route(), ...])

``prometheus_reader`` is OpenTelemetry's ``PrometheusMetricReader``, which registers with
prometheus_client's default registry; ``metrics_route`` serves that registry in the text
exposition format. Both import their extra only when called.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from clicktrace._optional import require

__all__ = ["metrics_route", "prometheus_reader"]

_EXTRA = ("prometheus", "opentelemetry-exporter-prometheus")


def prometheus_reader(**options: Any) -> Any:
    """A ``PrometheusMetricReader`` to hand to the app's ``MeterProvider``."""
    exporter = require("opentelemetry.exporter.prometheus", _EXTRA[0], package=_EXTRA[1])
    return exporter.PrometheusMetricReader(**options)


def metrics_route(path: str = "/metrics") -> Route:
    """``GET path``: every metric of prometheus_client's default registry, as a scrape."""
    client = require("prometheus_client", _EXTRA[0], package=_EXTRA[1])

    async def scrape(request: Request) -> Response:
        return Response(
            client.generate_latest(client.REGISTRY), media_type=client.CONTENT_TYPE_LATEST
        )

    return Route(path, scrape, methods=["GET"], name="clicktrace_metrics")
