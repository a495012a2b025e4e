"""Browser span ingestion: OTLP/JSON from the Pinia plugin into the server's trace pipeline
(:func:`browser_traces_route`, which ``clicktrace.install`` adds).

The route (``._route``) checks and rate-limits the request, the decoder (``._otlp``) rebuilds
each span from checked fields as an OpenTelemetry SDK span, and the admission (``._admission``)
decides which of a tab's browser stages the journal takes. The route loads on first use
(PEP 562): importing the package loads neither Starlette nor the SDK (the ``sdk`` extra).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clicktrace._lazy import lazy

if TYPE_CHECKING:
    from clicktrace.ingest._route import browser_traces_route

__all__ = ["browser_traces_route"]


__getattr__, __dir__ = lazy(__name__, {"browser_traces_route": "clicktrace.ingest._route"}, __all__)
