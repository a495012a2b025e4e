"""clicktrace: one correlation id and one W3C trace from a browser click, through the API, the
bus and the projection, back to the tab that clicked.

The layout follows the data: ids → context → propagation → edge (``asgi``, ``httpx``) →
envelope → bus (and ``outbox``) → notify; ``ingest`` takes the browser's own spans. Optional
pieces (``clicktrace.httpx``, ``clicktrace.logs``, the broker adapters) import their extras
lazily.

The root holds only what an app's own code calls (the names the README and docs/guide.md use);
everything else lives in its subpackage (``clicktrace.context.bound``,
``clicktrace.propagation.extract``, ``clicktrace.outbox.SqliteOutbox``, ...). The names are
PEP 562 lazy attributes: ``import clicktrace`` loads no other clicktrace module, and each name
loads its own module on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clicktrace._lazy import lazy
from clicktrace._version import __version__

if TYPE_CHECKING:
    from clicktrace._wiring import install
    from clicktrace.asgi import ClicktraceMiddleware
    from clicktrace.bus import MemoryBus
    from clicktrace.envelope import Envelope, new_envelope
    from clicktrace.ids import new_id
    from clicktrace.notify import Notifier, TokenSigner
    from clicktrace.projection import (
        Rejected,
        confirm,
        confirm_or_reject,
        reject,
        reject_on_dead_letter,
    )
    from clicktrace.web import error_response

# name -> the module that defines it
_LAZY = {
    "install": "clicktrace._wiring",
    "ClicktraceMiddleware": "clicktrace.asgi",
    "error_response": "clicktrace.web",
    "new_id": "clicktrace.ids",
    "Envelope": "clicktrace.envelope",
    "new_envelope": "clicktrace.envelope",
    "MemoryBus": "clicktrace.bus",
    "Notifier": "clicktrace.notify",
    "TokenSigner": "clicktrace.notify",
    "Rejected": "clicktrace.projection",
    "confirm": "clicktrace.projection",
    "confirm_or_reject": "clicktrace.projection",
    "reject": "clicktrace.projection",
    "reject_on_dead_letter": "clicktrace.projection",
}

__all__ = [
    "ClicktraceMiddleware",
    "Envelope",
    "MemoryBus",
    "Notifier",
    "Rejected",
    "TokenSigner",
    "__version__",
    "confirm",
    "confirm_or_reject",
    "error_response",
    "install",
    "new_envelope",
    "new_id",
    "reject",
    "reject_on_dead_letter",
]


__getattr__, __dir__ = lazy(__name__, _LAZY, __all__)
