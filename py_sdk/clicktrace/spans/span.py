"""``LeanSpan``: a recording span whose hot path only stores what it is given.

The SDK's span validates and bounds every attribute under a lock as it is set, builds bounded
lists for events and links, and copies itself into a ``ReadableSpan`` at the end. A lean span
keeps the raw operations (the start attributes, later sets, events, links) and is itself the
``ReadableSpan`` handed to the span processors at ``end()``: the SDK's own ``BoundedAttributes``
and ``BoundedList`` are applied when an exporter first reads the span, on the export thread, so
limits, cleaning and drop counts come out exactly as the SDK's would. After ``end()`` a span
no longer changes (as with the SDK, later calls are ignored with a warning), so handing out
``self`` is safe.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Mapping, Sequence
from time import time_ns
from types import TracebackType
from typing import TYPE_CHECKING, Any

from opentelemetry import trace as trace_api
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

from clicktrace.spans.bounds import BoundedOnRead, valid_link

if TYPE_CHECKING:
    from clicktrace.spans.tracer import LeanTracer

__all__ = ["LeanSpan"]

_LOG = logging.getLogger("opentelemetry.sdk.trace")  # the SDK's warnings, under its name
_UNSET = Status(StatusCode.UNSET)


class LeanSpan(trace_api.Span, BoundedOnRead):
    """A recording span (see the module docstring); made by :class:`LeanTracer` only."""

    _context: SpanContext
    _status: Status = _UNSET
    _end_time: int | None = None
    _record_exception = True
    _set_status_on_exception = True
    _record_end: Callable[[], None] | None = None

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
        self._ops = [dict(attributes)] if attributes else []
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
        self._ops.append(dict(attributes))

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
