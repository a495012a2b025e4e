"""clicktrace.protocol and js_sdk/src/protocol.ts name the same headers, routes, codes and
limits with the same values, so neither SDK drifts from the other (or from docs/protocol.md)."""

from __future__ import annotations

import re
from pathlib import Path

from clicktrace import protocol

TS = Path(__file__).resolve().parents[1] / "js_sdk" / "src" / "protocol.ts"
# TypeScript name -> Python name where the two differ (the browser speaks of URLs).
RENAMED = {
    "SESSION_URL": "SESSION_PATH",
    "TRACES_URL": "TRACES_PATH",
    "WEBSOCKET_URL": "WEBSOCKET_PATH",
}


def _ts_constants() -> dict[str, str | int]:
    found: dict[str, str | int] = {}
    pattern = r"^export const ([A-Z_]+) = (?:'([^']*)'|([0-9_]+))$"
    for name, text, number in re.findall(pattern, TS.read_text(), re.M):
        found[RENAMED.get(name, name)] = text if not number else int(number.replace("_", ""))
    return found


def test_every_constant_both_sides_name_has_the_same_value() -> None:
    ts = _ts_constants()
    shared = set(ts) & set(protocol.__all__)
    # The headers the browser sends, the routes it calls and the code it acts on, at least.
    assert {
        "CORRELATION_HEADER",
        "CLIENT_HEADER",
        "TRACEPARENT_HEADER",
        "SESSION_PATH",
        "TRACES_PATH",
        "WEBSOCKET_PATH",
        "INVALID_CLIENT",
        "SOCKET_IO_EVENT",
        "FORBIDDEN_TOPIC",
        "MAX_TOPIC_LENGTH",
    } <= shared
    assert {name: getattr(protocol, name) for name in shared} == {n: ts[n] for n in shared}


def test_the_python_names_are_the_ones_the_sdk_uses() -> None:
    from clicktrace.bus._types import DEAD_LETTER_REASON
    from clicktrace.ingest._route import TRACES_PATH
    from clicktrace.notify._frames import EVENT
    from clicktrace.propagation import HEADER_KEYS

    assert DEAD_LETTER_REASON == protocol.DEAD_LETTER_REASON_HEADER
    assert TRACES_PATH == protocol.TRACES_PATH
    assert EVENT == protocol.SOCKET_IO_EVENT
    assert HEADER_KEYS.correlation_id == protocol.CORRELATION_HEADER
