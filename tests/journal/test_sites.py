"""The recording sites outside the edge and the bus: the socket side (replayed and pushed
frames; the browser's own stages are in ``test_browser.py``)."""

from __future__ import annotations

import msgspec

from clicktrace.ids import new_id
from clicktrace.journal import Journal
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
