"""The recording sites outside the edge and the bus: the socket side and the browser spans."""

from __future__ import annotations

import msgspec
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags

from clicktrace.ids import new_id
from clicktrace.journal import Journal
from clicktrace.journal.browser import browser_stages, record_browser_stages
from clicktrace.notify._frames import Frame, build_frame
from clicktrace.notify._hub import Hub
from clicktrace.notify._replay import MemoryReplayBuffer

TAB = "01JD8X3Q7E8W5V4T2N9R6M0K1C"
TRACE, SPAN = 0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7
TRACEPARENT = f"00-{TRACE:032x}-{SPAN:016x}-01"


async def test_replayed_and_pushed_frames_are_journaled_in_their_trace(
    journal: Journal,
) -> None:
    buffer = MemoryReplayBuffer()
    missed, live = new_id(), new_id()
    await buffer.append(
        TAB,
        msgspec.structs.replace(
            build_frame(correlation_id=missed, status="confirmed"), traceparent=TRACEPARENT
        ),
    )
    sent: list[Frame] = []

    async def send(frame: Frame) -> None:
        sent.append(frame)

    hub = Hub(buffer)
    await hub.attach("socket-1", TAB, send, last_seq=0).resume()
    frame = await buffer.append(
        TAB,
        build_frame(correlation_id=live, status="rejected", error={"code": "x", "message": "y"}),
    )
    await hub.dispatch(TAB, frame)
    (replayed,) = await journal.read(missed)
    assert (replayed.stage, replayed.detail, replayed.trace_id) == (
        "replayed",
        "seq 1",
        f"{TRACE:032x}",
    )
    (pushed,) = await journal.read(live)
    assert (pushed.stage, pushed.detail, pushed.outcome) == ("pushed", "1 socket", "rejected")
    assert pushed.client_id == TAB


def span(
    name: str,
    kind: SpanKind,
    start_ms: float,
    end_ms: float,
    cid: str,
    parent: bool = True,
    outcome: str | None = None,
) -> ReadableSpan:
    attributes: dict[str, str] = {"clicktrace.correlation_id": cid}
    if outcome:
        attributes["clicktrace.outcome"] = outcome
    ctx = SpanContext(TRACE, SPAN + len(name), False, TraceFlags(1))
    return ReadableSpan(
        name=name,
        context=ctx,
        kind=kind,
        attributes=attributes,
        resource=Resource({}),
        parent=SpanContext(TRACE, SPAN, False, TraceFlags(1)) if parent else None,
        start_time=int(start_ms * 1e6),
        end_time=int(end_ms * 1e6),
    )


async def test_browser_spans_give_the_browser_stages_per_contract_3(journal: Journal) -> None:
    cid = new_id()
    spans = [
        span(
            "rename product", SpanKind.INTERNAL, 1000, 1250, cid, parent=False, outcome="confirmed"
        ),
        span("clicktrace session", SpanKind.INTERNAL, 1001, 1060, cid),
        span("POST", SpanKind.CLIENT, 1061, 1100, cid),
        span("receive clicktrace", SpanKind.CONSUMER, 1240, 1245, cid),
        span("unrelated", SpanKind.INTERNAL, 1000, 1001, new_id()),
        span("not ours", SpanKind.CLIENT, 1000, 1001, "not-an-id"),
    ]
    stages = [stage for s in spans for stage in browser_stages(s)]
    assert record_browser_stages(stages, TAB) == 5  # the click's; a plain child span gives none
    got = {e.stage: e for e in await journal.read(cid)}
    assert set(got) == {"clicked", "settled", "session", "http", "received"}
    assert (got["settled"].outcome, got["settled"].duration_ms) == ("confirmed", 250)
    assert got["clicked"].at == 1000 and got["settled"].at == 1250
    assert got["session"].duration_ms == 59 and got["http"].at == 1061
    assert all(e.client_id == TAB and e.trace_id == f"{TRACE:032x}" for e in got.values())
