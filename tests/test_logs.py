from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider

from clicktrace import context as click_context
from clicktrace.logs import (
    FIELDS,
    MAX_FIELD_LENGTH,
    MAX_MESSAGE_LENGTH,
    ClicktraceFilter,
    JsonFormatter,
    add_clicktrace,
)

CLICK = click_context.ClickContext(
    "01JDQ3N7R0ZKX2Y8W5V4T3S2R1",
    causation_id="01JDQ3N7R0ZKX2Y8W5V4T3S2R2",
    client_id="01JDQ3N7R0ZKX2Y8W5V4T3S2R3",
)


@pytest.fixture
def tracer_provider() -> TracerProvider:
    return TracerProvider()  # records spans in memory only while they are open: enough here


def make_logger(handler: logging.Handler) -> Iterator[logging.Logger]:
    logger = logging.getLogger(f"clicktrace.test.{id(handler)}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield logger
    logger.removeHandler(handler)


@pytest.fixture
def stream() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
def text_logger(stream: io.StringIO) -> Iterator[logging.Logger]:
    handler = logging.StreamHandler(stream)
    handler.addFilter(ClicktraceFilter(default="-"))
    handler.setFormatter(
        logging.Formatter(
            "%(correlation_id)s %(causation_id)s %(client_id)s %(trace_id)s %(span_id)s %(message)s"
        )
    )
    yield from make_logger(handler)


@pytest.fixture
def json_logger(stream: io.StringIO) -> Iterator[logging.Logger]:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    yield from make_logger(handler)


def test_filter_adds_click_and_span_ids(
    text_logger: logging.Logger, stream: io.StringIO, tracer_provider: TracerProvider
) -> None:
    tracer = tracer_provider.get_tracer("test")
    with click_context.bound(CLICK), tracer.start_as_current_span("work") as span:
        text_logger.info("renamed")
    text_logger.info("outside")
    sc = span.get_span_context()
    inside, outside = stream.getvalue().splitlines()
    assert inside == (
        f"{CLICK.correlation_id} {CLICK.causation_id} {CLICK.client_id} "
        f"{sc.trace_id:032x} {sc.span_id:016x} renamed"
    )
    assert outside == "- - - - - outside"


def test_filter_keeps_ids_already_on_the_record() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", (), None)
    with click_context.bound(CLICK):
        ClicktraceFilter().filter(record)
    ClicktraceFilter(default="-").filter(record)  # e.g. again on a QueueListener's thread
    assert vars(record)["correlation_id"] == CLICK.correlation_id
    assert vars(record)["trace_id"] is None  # no span: absent, and the default never replaces it


def test_json_lines_carry_present_fields_and_extras(
    json_logger: logging.Logger, stream: io.StringIO, tracer_provider: TracerProvider
) -> None:
    with click_context.bound(CLICK), tracer_provider.get_tracer("t").start_as_current_span("w"):
        json_logger.info("hello %s", "world", extra={"product_id": 7, "ratio": float("nan")})
    json_logger.warning("no context")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "hello world" and first["level"] == "INFO"
    assert {k: first[k] for k in FIELDS[:3]} == {
        "correlation_id": CLICK.correlation_id,
        "causation_id": CLICK.causation_id,
        "client_id": CLICK.client_id,
    }
    assert len(first["trace_id"]) == 32 and len(first["span_id"]) == 16
    assert (first["product_id"], first["ratio"]) == (7, "nan")
    assert first["time"].endswith("+00:00")
    assert not set(FIELDS) & set(second)


def test_json_escapes_and_truncates_hostile_values(
    json_logger: logging.Logger, stream: io.StringIO
) -> None:
    forged = 'x"\n{"level": "CRITICAL", "message": "forged"}\x1b[31m\u2028'
    json_logger.error(forged + "y" * MAX_MESSAGE_LENGTH, extra={"who": forged * 500})
    try:
        raise ValueError("boom\nline")
    except ValueError:
        json_logger.exception("failed")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and all(line.isascii() for line in lines)
    entry = json.loads(lines[0])
    assert entry["message"].startswith(forged) and entry["level"] == "ERROR"
    assert len(entry["message"]) == MAX_MESSAGE_LENGTH + 1 and entry["message"].endswith("…")
    assert len(entry["who"]) == MAX_FIELD_LENGTH + 1
    assert "ValueError: boom" in json.loads(lines[1])["exception"]


@given(st.text(), st.text(max_size=50))
def test_json_is_always_one_parseable_line(message: str, extra: str) -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, message, (), None)
    record.__dict__["user_input"] = extra
    line = JsonFormatter().format(record)
    assert "\n" not in line and json.loads(line)["message"] == message[:MAX_MESSAGE_LENGTH] + (
        "…" if len(message) > MAX_MESSAGE_LENGTH else ""
    )


def test_structlog_processor(tracer_provider: TracerProvider) -> None:
    capture = structlog.testing.LogCapture()
    log = structlog.wrap_logger(None, processors=[add_clicktrace, capture])
    with click_context.bound(CLICK), tracer_provider.get_tracer("t").start_as_current_span("w"):
        log.info("renamed", correlation_id="bound-wins")
    log.info("outside")
    inside, outside = capture.entries
    assert inside["correlation_id"] == "bound-wins"
    assert inside["client_id"] == CLICK.client_id and len(inside["trace_id"]) == 32
    assert not set(FIELDS) & set(outside)


def test_structlog_processor_plain_call() -> None:
    event: dict[str, Any] = {"event": "x"}
    with click_context.bound(click_context.ClickContext(CLICK.correlation_id)):
        assert add_clicktrace(None, "info", event) == {
            "event": "x",
            "correlation_id": CLICK.correlation_id,
        }
