"""``LeanSpan``: a recording span whose hot path only stores what it is given.

The SDK's span validates and bounds every attribute under a lock as it is set, builds bounded
lists for events and links, and copies itself into a ``ReadableSpan`` at the end. A lean span
keeps the raw operations (the start attributes, later sets, events, links) and is itself the
``ReadableSpan`` handed to the span processors at ``end()``: the SDK's own ``BoundedAttributes``
and ``BoundedList`` are applied when an exporter first reads the span, on the export thread, so
limits, cleaning and drop counts come out exactly as the SDK's would. After ``end()`` a span
no longer changes (as with the SDK, later calls are ignored with a warning), so handing out
``self`` is safe.

On the hot path a span stores only its ids, times, name, kind, status and a **reference** to
each attribute mapping it is given (at start and by ``set_attributes``): nothing is copied or
checked there, so a caller must not change a mapping after handing it over (clicktrace's own
callers build a fresh one each time; the SDK would have copied it). What an exporter reads is
built when it first reads it: the attributes bounded once, the empty event and link lists
shared.

Nothing here calls ``ReadableSpan.__init__``: the fields it would set are the span's own (its
name, context, parent, kind, times, status) or computed from the stored operations and the
tracer (attributes, events, links, resource, scope), so every ``ReadableSpan`` property and
``to_json()`` read a lean span as they read the SDK's. ``clicktrace.spans._tracer`` checks at
start that the installed SDK still has exactly these fields and these private helpers.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Mapping, Sequence
from time import time_ns
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any

from opentelemetry import trace as trace_api
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationInfo, InstrumentationScope
from opentelemetry.semconv._incubating.attributes.exception_attributes import (
    EXCEPTION_ESCAPED,
)
from opentelemetry.semconv.attributes.exception_attributes import (
    EXCEPTION_MESSAGE,
    EXCEPTION_STACKTRACE,
    EXCEPTION_TYPE,
)
from opentelemetry.trace import Link, SpanContext, SpanKind
from opentelemetry.trace.status import Status, StatusCode
from opentelemetry.util import types

if TYPE_CHECKING:
    from clicktrace.spans._tracer import LeanTracer

__all__ = ["LeanSpan", "bound_attributes", "bound_events", "bound_links", "valid_link"]

_LOG = logging.getLogger("opentelemetry.sdk.trace")  # the SDK's warnings, under its name
_UNSET = Status(StatusCode.UNSET)


class LeanSpan(trace_api.Span, ReadableSpan):
    """A recording span (see the module docstring); made by :class:`LeanTracer` only."""

    _tracer: LeanTracer
    _context: SpanContext
    _ops: list[Op]
    _raw_events: list[tuple[str, types.Attributes, int]] | tuple[()] = ()
    _raw_links: list[Link] | tuple[()] = ()
    _status: Status = _UNSET
    _end_time: int | None = None
    _record_exception = True
    _set_status_on_exception = True
    _record_end: Callable[[], None] | None = None
    _bounded: tuple[Mapping[str, Any], int] | None = None
    _bounded_events: BoundedList[Any] | None = None
    _bounded_links: BoundedList[Any] | None = None

    def __init__(
        self,
        tracer: LeanTracer,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        attributes: types.Attributes,
        links: Sequence[Link],
        start_time: int | None,
        record_exception: bool,
        set_status_on_exception: bool,
    ) -> None:
        # ReadableSpan.__init__ is not called: the hot path sets only what differs from the
        # class defaults below; resource and scope are read from the tracer.
        self._tracer = tracer
        self._name = name
        self._context = context
        self._parent = parent
        self._kind = kind
        self._start_time = start_time if start_time is not None else time_ns()
        self._ops = [attributes] if attributes else []  # a reference: see the module docstring
        if links:
            self._raw_links = [link for link in links if valid_link(link)]
        if not record_exception:
            self._record_exception = False
        if not set_status_on_exception:
            self._set_status_on_exception = False

    # -- the API the app calls ----------------------------------------------------------

    def get_span_context(self) -> SpanContext:
        return self._context

    def is_recording(self) -> bool:
        return self._end_time is None

    def set_attribute(self, key: str, value: types.AnyValue) -> None:
        if self._end_time is not None:
            _LOG.warning("Setting attribute on ended span.")
            return
        self._ops.append((key, value))

    def set_attributes(self, attributes: Mapping[str, types.AnyValue]) -> None:
        if self._end_time is not None:
            _LOG.warning("Setting attribute on ended span.")
            return
        self._ops.append(attributes)

    def add_event(
        self, name: str, attributes: types.Attributes = None, timestamp: int | None = None
    ) -> None:
        if self._end_time is not None:
            _LOG.warning("Tried calling %s on an ended span.", "_add_event")
            return
        when = time_ns() if timestamp is None else timestamp
        event = (name, dict(attributes) if attributes else None, when)
        if self._raw_events:
            self._raw_events.append(event)
        else:
            self._raw_events = [event]

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        if not valid_link(Link(context, attributes)):
            return
        if self._end_time is not None:
            _LOG.warning("Tried calling %s on an ended span.", "_add_link")
            return
        link = Link(context, dict(attributes) if attributes else None)
        if self._raw_links:
            self._raw_links.append(link)
        else:
            self._raw_links = [link]

    def update_name(self, name: str) -> None:
        if self._end_time is not None:
            _LOG.warning("Tried calling %s on an ended span.", "update_name")
            return
        self._name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if self._end_time is not None:
            _LOG.warning("Tried calling %s on an ended span.", "set_status")
            return
        # The SDK's rules: OK is final; UNSET is never set.
        if self._status.status_code is StatusCode.OK:
            return
        if isinstance(status, Status):
            if status.status_code is StatusCode.UNSET:
                return
            if description is not None:
                _LOG.warning(
                    "Description %s ignored. Use either `Status` or `(StatusCode, Description)`",
                    description,
                )
            self._status = status
        elif isinstance(status, StatusCode) and status is not StatusCode.UNSET:
            self._status = Status(status, description)

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        module = type(exception).__module__
        qualname = type(exception).__qualname__
        recorded: dict[str, Any] = {
            EXCEPTION_TYPE: f"{module}.{qualname}" if module and module != "builtins" else qualname,
            EXCEPTION_MESSAGE: str(exception),
            EXCEPTION_STACKTRACE: "".join(traceback.format_exception(exception)),
            EXCEPTION_ESCAPED: str(escaped),
        }
        if attributes:
            recorded.update(attributes)
        self.add_event("exception", recorded, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self._end_time is not None:
            _LOG.warning("Calling end() on an ended span.")
            return
        self._end_time = end_time if end_time is not None else time_ns()
        if self._record_end is not None:
            self._record_end()
        for processor in self._tracer.processors:
            processor.on_end(self)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        if exc_val is not None and self.is_recording():
            if self._record_exception:
                self.record_exception(exc_val, escaped=True)
            if self._set_status_on_exception:
                self.set_status(Status(StatusCode.ERROR, f"{type(exc_val).__name__}: {exc_val}"))
        super().__exit__(exc_type, exc_val, exc_tb)

    def __repr__(self) -> str:
        return f'{type(self).__name__}(name="{self._name}", context={self._context})'

    # -- what exporters read: the stored operations bounded on first read, as the SDK's span
    # bounds them as it goes

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

    # A tuple, as the SDK's ReadableSpan gives them; the usual span has none at all.

    @property
    def events(self) -> Sequence[Event]:
        return tuple(self._events_bounded()) if self._raw_events else ()

    @property
    def dropped_events(self) -> int:
        return int(self._events_bounded().dropped) if self._raw_events else 0

    @property
    def links(self) -> Sequence[Link]:
        return tuple(self._links_bounded()) if self._raw_links else ()

    @property
    def dropped_links(self) -> int:
        return int(self._links_bounded().dropped) if self._raw_links else 0

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

    # The rest of the fields ``ReadableSpan.__init__`` would set, which its own methods
    # (``to_json``, as the console exporter calls it) read directly.

    @property
    def _attributes(self) -> types.Attributes:  # type: ignore[override]
        return self._attributes_bounded()[0]

    @property
    def _events(self) -> Sequence[Event]:  # type: ignore[override]
        return self._events_bounded()

    @property
    def _links(self) -> Sequence[Link]:  # type: ignore[override]
        return self._links_bounded()

    @property
    def _resource(self) -> Resource:  # type: ignore[override]
        return self._tracer.resource

    @property
    def _instrumentation_scope(self) -> InstrumentationScope | None:  # type: ignore[override]
        return self._tracer.scope

    @property
    def _instrumentation_info(self) -> InstrumentationInfo | None:  # type: ignore[override]
        return self._tracer.info


# -- bounding on read: the SDK's span limits applied to what a span stored, when an exporter
# first reads it (on the export thread, not the request's), with the SDK's own
# ``BoundedAttributes`` and ``BoundedList``, so limits, cleaning and drop counts come out as the
# SDK's span would have them.

Op = tuple[str, Any] | Mapping[str, Any]
"""One attribute operation as the span stored it: a ``(key, value)`` set (a tuple), or a
mapping (the caller's own, by reference)."""


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
    if max_value_len is not None:  # values to cut: the SDK's class does it
        return _replay(ops, maxlen, max_value_len)
    plain: dict[str, Any] = {}
    for op in ops:
        if isinstance(op, tuple):
            key, value = op
            if type(value) not in _PLAIN or type(key) is not str or not key:
                return _replay(ops, maxlen, max_value_len)
            plain.pop(key, None)  # a re-set key moves to the end, as in BoundedAttributes
            plain[key] = value
            continue
        # A mapping: its keys and values checked by C-level passes, not one by one.
        if not (
            _PLAIN.issuperset(map(type, op.values()))
            and _KEYS.issuperset(map(type, op))
            and "" not in op
        ):
            return _replay(ops, maxlen, max_value_len)
        if plain and not plain.keys().isdisjoint(op):
            for key in op:
                plain.pop(key, None)
        plain.update(op)
    if maxlen is not None and len(plain) > maxlen:
        return _replay(ops, maxlen, max_value_len)
    return MappingProxyType(plain), 0


_PLAIN = frozenset({str, bool, int, float})  # values kept as they are (within the limits)
_KEYS = frozenset({str})


def _replay(
    ops: list[Op], maxlen: int | None, max_value_len: int | None
) -> tuple[Mapping[str, Any], int]:
    bounded = BoundedAttributes(maxlen, None, immutable=False, max_value_len=max_value_len)
    for op in ops:
        if isinstance(op, tuple):
            bounded[op[0]] = op[1]
        else:
            bounded._set_items(op)
    bounded._immutable = True
    return bounded, bounded.dropped
