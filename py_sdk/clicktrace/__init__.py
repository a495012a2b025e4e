"""clicktrace: one correlation id and one W3C trace from a browser click, through the API, the
bus and the projection, back to the tab that clicked.

The layout follows the data: ids → context → propagation → edge (``asgi``, ``httpx``) →
envelope → bus (and ``outbox``) → notify; ``ingest`` takes the browser's own spans. Optional
pieces (``clicktrace.httpx``, ``clicktrace.logs``, the broker adapters) import their extras
lazily; everything here needs only the base install.
"""

__version__ = "0.1.0"

from clicktrace.asgi import ClicktraceMiddleware, cors_options, error_response
from clicktrace.bus import Bus, MemoryBus, create_bus
from clicktrace.context import ClickContext, bind, bound, current, reset
from clicktrace.envelope import Envelope, Metadata, new_envelope
from clicktrace.ids import new_id, parse_id
from clicktrace.ingest import browser_traces_route
from clicktrace.notify import Notifier, TokenSigner
from clicktrace.outbox import OutboxRelay, PostgresOutbox, SqliteOutbox
from clicktrace.projection import confirm, reject, reject_on_dead_letter
from clicktrace.propagation import HEADER_KEYS, METADATA_KEYS, Extracted, extract, inject
from clicktrace.wiring import install

__all__ = [
    "HEADER_KEYS",
    "METADATA_KEYS",
    "Bus",
    "ClickContext",
    "ClicktraceMiddleware",
    "Envelope",
    "Extracted",
    "MemoryBus",
    "Metadata",
    "Notifier",
    "OutboxRelay",
    "PostgresOutbox",
    "SqliteOutbox",
    "TokenSigner",
    "__version__",
    "bind",
    "bound",
    "browser_traces_route",
    "confirm",
    "cors_options",
    "create_bus",
    "current",
    "error_response",
    "extract",
    "inject",
    "install",
    "new_envelope",
    "new_id",
    "parse_id",
    "reject",
    "reject_on_dead_letter",
    "reset",
]
