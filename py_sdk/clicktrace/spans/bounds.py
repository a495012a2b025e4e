"""The SDK's span limits applied to what a :class:`~clicktrace.spans.span.LeanSpan` stored,
when an exporter first reads it (on the export thread, not the request's): the SDK's own
``BoundedAttributes`` and ``BoundedList``, so limits, cleaning and drop counts come out as the
SDK's span would have them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationInfo, InstrumentationScope
from opentelemetry.trace import Link
from opentelemetry.util import types

if TYPE_CHECKING:
    from clicktrace.spans.tracer import LeanTracer

__all__ = ["BoundedOnRead", "Op", "bound_attributes", "bound_events", "bound_links", "valid_link"]

Op = tuple[str, Any] | Mapping[str, Any]
"""One attribute operation as the span stored it: a ``(key, value)`` set, or a mapping."""


def bound_events(
    raw: Sequence[tuple[str, types.Attributes, int]], limits: SpanLimits
) -> BoundedList[Any]:
    if not raw:
        return _NOTHING  # the common case: no events
    events = [
        Event(name, _frozen(a, limits.max_event_attributes, limits), ts) for name, a, ts in raw
    ]
    return BoundedList.from_seq(limits.max_events, events)


def bound_links(raw: Sequence[Link], limits: SpanLimits) -> BoundedList[Any]:
    if not raw:
        return _NOTHING
    links = [
        Link(link.context, _frozen(link.attributes, limits.max_link_attributes, limits))
        for link in raw
    ]
    return BoundedList.from_seq(limits.max_links, links)


# Shared by every span without events (or links): empty, nothing dropped, never appended to
# (an ended span's lists are only read).
_NOTHING: BoundedList[Any] = BoundedList(0)


def valid_link(link: Link | None) -> bool:
    """The SDK's rule: a link needs a valid context, or attributes or a trace state."""
    if not link:
        return False
    context = link.context
    return bool(context and (context.is_valid or (link.attributes or context.trace_state)))


def _frozen(
    attributes: types.Attributes, maxlen: int | None, limits: SpanLimits
) -> BoundedAttributes:
    return BoundedAttributes(
        maxlen, attributes, immutable=True, max_value_len=limits.max_attribute_length
    )


def bound_attributes(ops: list[Op], limits: SpanLimits) -> tuple[Mapping[str, Any], int]:
    """The attributes as the SDK's ``BoundedAttributes`` would hold them after the same
    operations, and how many were dropped. The common case (plain values within the limits)
    takes a plain dict; anything else replays the operations through the SDK's own class."""
    maxlen, max_value_len = limits.max_span_attributes, limits.max_span_attribute_length
    plain: dict[str, Any] = {}
    for op in ops:
        for key, value in op.items() if type(op) is dict else (op,):
            kind: type[Any] = type(value)
            if kind is str:
                if max_value_len is not None and len(value) > max_value_len:
                    return _replay(ops, maxlen, max_value_len)
            elif kind is not bool and kind is not int and kind is not float:
                return _replay(ops, maxlen, max_value_len)
            if type(key) is not str or not key:
                return _replay(ops, maxlen, max_value_len)
            plain.pop(key, None)  # a re-set key moves to the end, as in BoundedAttributes
            plain[key] = value
    if maxlen is not None and len(plain) > maxlen:
        return _replay(ops, maxlen, max_value_len)
    return MappingProxyType(plain), 0


def _replay(
    ops: list[Op], maxlen: int | None, max_value_len: int | None
) -> tuple[Mapping[str, Any], int]:
    bounded = BoundedAttributes(maxlen, None, immutable=False, max_value_len=max_value_len)
    for op in ops:
        if type(op) is dict:
            bounded._set_items(op)
        else:
            bounded[op[0]] = op[1]  # type: ignore[index]
    bounded._immutable = True
    return bounded, bounded.dropped


class BoundedOnRead(ReadableSpan):
    """What exporters read of a lean span: its stored operations bounded on first read, as
    the SDK's span bounds them as it goes. ``LeanSpan`` fills the fields."""

    _tracer: LeanTracer
    _ops: list[Op]
    _raw_events: list[tuple[str, types.Attributes, int]] | tuple[()] = ()
    _raw_links: list[Link] | tuple[()] = ()
    _bounded: tuple[Mapping[str, Any], int] | None = None
    _bounded_events: BoundedList[Any] | None = None
    _bounded_links: BoundedList[Any] | None = None

    @property
    def resource(self) -> Resource:
        return self._tracer.resource

    @property
    def instrumentation_scope(self) -> InstrumentationScope | None:
        return self._tracer.scope

    @property
    def instrumentation_info(self) -> InstrumentationInfo | None:
        return self._tracer.info

    @property
    def attributes(self) -> types.Attributes:
        return self._attributes_bounded()[0]

    @property
    def dropped_attributes(self) -> int:
        return self._attributes_bounded()[1]

    @property
    def events(self) -> Sequence[Event]:
        return self._events_bounded()

    @property
    def dropped_events(self) -> int:
        return int(self._events_bounded().dropped)

    @property
    def links(self) -> Sequence[Link]:
        return self._links_bounded()

    @property
    def dropped_links(self) -> int:
        return int(self._links_bounded().dropped)

    def _attributes_bounded(self) -> tuple[Mapping[str, Any], int]:
        if self._bounded is None:
            self._bounded = bound_attributes(self._ops, self._tracer.limits)
        return self._bounded

    def _events_bounded(self) -> BoundedList[Any]:
        if self._bounded_events is None:
            self._bounded_events = bound_events(self._raw_events, self._tracer.limits)
        return self._bounded_events

    def _links_bounded(self) -> BoundedList[Any]:
        if self._bounded_links is None:
            self._bounded_links = bound_links(self._raw_links, self._tracer.limits)
        return self._bounded_links
