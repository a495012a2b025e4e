"""The projection: applies catalogue events to the read model, tells the tab the outcome and
publishes each change to every tab watching the catalogue (live updates, versioned per product).

It runs as a bus consumer, inside the context the message carried, so its span, its
notification and its logs share the click's trace and correlation id. It never applies a
command past its deadline: the tab has rolled back by then.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from clicktrace.claims import Outcome
from clicktrace.envelope import Envelope
from clicktrace.notify import Notify, PublishUpdate
from clicktrace.projection import send_outcome

from .catalogue import RENAMED
from .faults import Faults
from .store import Store

CONSUMER = "catalogue-projection"
TOPIC = "catalogue"
STOPPED_POLL_SECONDS = 0.2
SLOW_MARGIN_SECONDS = 1.0
log = logging.getLogger("demo.projection")


class InjectedFailure(RuntimeError):
    """The fault panel asked the projection to fail this delivery."""


class Projection:
    def __init__(
        self,
        store: Store,
        notify: Notify,
        faults: Faults,
        tracer_provider: TracerProvider | None = None,
        publish: PublishUpdate | None = None,
    ) -> None:
        self._store = store
        self._notify = notify
        self._publish = publish
        self._faults = faults
        self._tracer = trace.get_tracer(__name__, tracer_provider=tracer_provider)

    async def handle(self, envelope: Envelope) -> None:
        meta = envelope.metadata
        if meta.type != RENAMED:
            return
        await self._injected(envelope)
        with self._tracer.start_as_current_span(f"project {RENAMED}") as span:
            span.set_attribute("clicktrace.correlation_id", meta.correlation_id)
            outcome = await self._apply(envelope)
            if outcome is None:
                return
            product = outcome.data if outcome.status == "confirmed" else None
            versioned: dict[str, Any] = {}
            if isinstance(product, dict) and isinstance(product.get("version"), int):
                versioned = {"version": product["version"], "key": str(product["id"])}
                if self._publish is not None:  # every tab showing the catalogue
                    await self._publish(TOPIC, product, **versioned)
            if meta.client_id is None:
                return
            span.set_attribute("clicktrace.outcome", outcome.status)
            log.info("projected %s: %s", meta.message_id, outcome.status)
            await send_outcome(self._notify, envelope, outcome, **versioned)

    async def _injected(self, envelope: Envelope) -> None:
        """The faults of the panel, in the order a sick worker would show them."""
        if await self._faults.on("stopped"):
            log.warning("projection stopped: holding %s unacked", envelope.metadata.message_id)
            while await self._faults.on("stopped"):
                await asyncio.sleep(STOPPED_POLL_SECONDS)
        if await self._faults.take_failure():
            log.warning("projection failing %s on purpose", envelope.metadata.message_id)
            raise InjectedFailure("the fault panel made the projection fail")
        if await self._faults.on("slow"):
            deadline = envelope.metadata.deadline
            wait = (deadline / 1000 - time.time() if deadline else 0) + SLOW_MARGIN_SECONDS
            log.warning("projection slow: %.1f s past the deadline", SLOW_MARGIN_SECONDS)
            await asyncio.sleep(max(wait, SLOW_MARGIN_SECONDS))

    async def _apply(self, envelope: Envelope) -> Outcome | None:
        meta, payload = envelope.metadata, envelope.payload
        deadline = meta.deadline
        if deadline is not None and time.time() * 1000 > deadline:
            return Outcome.rejected(
                "deadline_exceeded", "The projection got to it after its deadline."
            )
        return await self._store.apply_rename(
            CONSUMER, meta.message_id, int(payload["id"]), str(payload["name"])
        )
