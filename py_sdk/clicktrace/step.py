"""``step()``: a handler that does several things says which one it is doing.

.. code-block:: python

    async with step("reserve stock"):
        await stock.reserve(order)

    @step("release stock", compensates="reserve stock")
    async def release(order): ...

Each step is an INTERNAL span (``step.name``, ``step.attempt``, the correlation id) with the
events StepStarted / StepCompleted / StepFailed (``error.type``, ``error.message``), or
Compensating for a compensation; one log line per transition carrying the click's ids; a
journal entry (stage ``step``) when it ends, which also feeds ``clicktrace.step.duration``.
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar, cast

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider

from clicktrace import context as click_context
from clicktrace._version import __version__
from clicktrace.bus._types import current_attempt
from clicktrace.journal import record
from clicktrace.logs import current_fields

__all__ = ["Step", "step"]

_LOG = logging.getLogger("clicktrace.step")
_MAX_ERROR_MESSAGE = 500
F = TypeVar("F", bound=Callable[..., Any])


def step(
    name: str,
    *,
    compensates: str | None = None,
    attempt: int | None = None,
    tracer_provider: TracerProvider | None = None,
    logger: Any = None,
) -> Step:
    """A step of the current handler: ``async with``, ``with``, or a decorator.

    ``attempt`` defaults to the delivery attempt of the message being handled (else 1).
    ``logger`` is a stdlib logger (default ``clicktrace.step``) or a structlog logger, whose
    own processor chain (with :func:`clicktrace.logs.add_clicktrace`) adds the ids.
    """
    if not isinstance(name, str) or not name:
        raise ValueError("a step needs a non-empty name")
    if compensates is not None and (not isinstance(compensates, str) or not compensates):
        raise ValueError("compensates names the step undone: a non-empty string")
    return Step(name, compensates, attempt, tracer_provider, logger)


class Step:
    """One use of a step (the decorator makes one per call)."""

    __slots__ = (
        "_attempt",
        "_began",
        "_compensates",
        "_logger",
        "_name",
        "_provider",
        "_span",
        "_token",
    )

    def __init__(
        self,
        name: str,
        compensates: str | None,
        attempt: int | None,
        tracer_provider: TracerProvider | None,
        logger: Any,
    ) -> None:
        self._name, self._compensates, self._attempt = name, compensates, attempt
        self._provider, self._logger = tracer_provider, logger
        self._span: Span | None = None
        self._token: object = None
        self._began = 0.0

    # -- as a context manager --------------------------------------------------------------

    def __enter__(self) -> Span:
        if self._span is not None:
            raise RuntimeError(f"step {self._name!r} is already running: make one per use")
        click = click_context.current()
        attempt = self._attempt
        if attempt is None:
            # The bus's attempt at the message in hand, when it is this click's.
            attempt = (current_attempt(click.correlation_id) if click else None) or 1
        self._attempt = attempt
        attributes: dict[str, str | int] = {"step.name": self._name, "step.attempt": attempt}
        if click is not None:
            attributes["clicktrace.correlation_id"] = click.correlation_id
        if self._compensates is not None:
            attributes["step.compensates"] = self._compensates
        tracer = trace.get_tracer("clicktrace.step", __version__, tracer_provider=self._provider)
        span = self._span = tracer.start_span(
            self._name, kind=SpanKind.INTERNAL, attributes=attributes
        )
        self._token = otel_context.attach(trace.set_span_in_context(span))
        if self._compensates is not None:
            span.add_event("Compensating", {"step.compensates": self._compensates})
            self._log(logging.INFO, "compensating", compensates=self._compensates)
        else:
            span.add_event("StepStarted")
            self._log(logging.INFO, "started")
        self._began = time.perf_counter()
        return span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        span, token = self._span, self._token
        if span is None:
            return
        duration_ms = (time.perf_counter() - self._began) * 1000.0
        compensation = self._compensates is not None
        try:
            if exc is None:
                span.add_event("StepCompleted")
                outcome = "compensated" if compensation else "ok"
                self._log(logging.INFO, "completed", duration_ms=round(duration_ms, 3))
            else:
                error_type = type(exc).__qualname__
                message = str(exc)[:_MAX_ERROR_MESSAGE]
                span.add_event("StepFailed", {"error.type": error_type, "error.message": message})
                span.set_attribute("error.type", error_type)
                span.set_status(Status(StatusCode.ERROR, error_type))
                outcome = "compensation_failed" if compensation else "error"
                self._log(
                    logging.WARNING,
                    "failed",
                    duration_ms=round(duration_ms, 3),
                    error_type=error_type,
                    error_message=message,
                )
            record(
                "step",
                outcome=outcome,
                detail=self._name,
                attempt=self._attempt,
                duration_ms=duration_ms,
            )
        finally:
            otel_context.detach(cast(Any, token))
            span.end()
            self._span = None

    async def __aenter__(self) -> Span:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    # -- as a decorator ----------------------------------------------------------------------

    def __call__(self, fn: F) -> F:
        config = (self._name, self._compensates, self._attempt, self._provider, self._logger)
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                with Step(*config):
                    return await fn(*args, **kwargs)

            return cast(F, run_async)

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            with Step(*config):
                return fn(*args, **kwargs)

        return cast(F, run)

    # -- the log line ------------------------------------------------------------------------

    def _log(self, level: int, transition: str, **fields: Any) -> None:
        fields = {
            "step_name": self._name,
            "step_attempt": self._attempt,
            "step_transition": transition,
            **fields,
        }
        logger = self._logger if self._logger is not None else _LOG
        if isinstance(logger, logging.Logger | logging.LoggerAdapter):
            if logger.isEnabledFor(level):
                ids = {k: v for k, v in current_fields().items() if v is not None}
                logger.log(level, "step %s %s", self._name, transition, extra={**ids, **fields})
        else:  # structlog (or anything with the same call shape)
            logger.log(level, f"step {transition}", **fields)
