"""clicktrace as an OpenTelemetry ``TextMapPropagator``.

Registered as the ``clicktrace`` entry point of ``opentelemetry_propagator``, so
``OTEL_PROPAGATORS=clicktrace`` makes every OpenTelemetry instrumentation (ASGI, httpx,
aio-pika, ...) use clicktrace's W3C Level 2 parsers and carry the correlation id too. It
replaces ``tracecontext,baggage``: it reads and writes ``traceparent``, ``tracestate`` and
``baggage`` itself.

The clicktrace ids found on extract travel in the returned OpenTelemetry context (see
:func:`click_from_context`), since a propagator must not touch other state; inject writes the
ids of that context, else of the bound :class:`~clicktrace.context.ClickContext`.
"""

from __future__ import annotations

from opentelemetry.context import Context, create_key, get_value, set_value
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)

from clicktrace import context as click_context
from clicktrace.propagation._inject_extract import HEADER_KEYS, extract, inject

__all__ = ["ClicktracePropagator", "click_from_context"]

_CLICK_KEY = create_key("clicktrace-click")
_FIELDS = frozenset(
    {
        HEADER_KEYS.traceparent,
        HEADER_KEYS.tracestate,
        HEADER_KEYS.baggage,
        HEADER_KEYS.correlation_id,
        HEADER_KEYS.causation_id,
        HEADER_KEYS.deadline,
    }
)


def click_from_context(context: Context | None = None) -> click_context.ClickContext | None:
    """The clicktrace ids a :class:`ClicktracePropagator` extracted into ``context``."""
    value = get_value(_CLICK_KEY, context)
    return value if isinstance(value, click_context.ClickContext) else None


class ClicktracePropagator(TextMapPropagator):
    """W3C ``traceparent``/``tracestate``/``baggage`` plus the clicktrace headers."""

    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = default_getter,
    ) -> Context:
        """Never raises: whatever is invalid is left out, and ``context`` kept."""
        extracted = extract(carrier, getter, HEADER_KEYS)
        ctx = extracted.otel_context(context)
        if ctx is None:
            ctx = context if context is not None else Context()
        if extracted.correlation_id is not None:
            ctx = set_value(_CLICK_KEY, extracted.click_context(fallback_correlation_id=""), ctx)
        return ctx

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        click = click_from_context(context) or click_context.current()
        inject(carrier, setter, HEADER_KEYS, click=click, otel=context)

    @property
    def fields(self) -> set[str]:
        return set(_FIELDS)
