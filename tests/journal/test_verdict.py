"""Verdicts from entries: each state from its evidence, the tab's view beside the server's,
clocks corrected only from evidence that bounds them, durations never negative."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clicktrace.journal import Entry, Thresholds
from clicktrace.journal._entry import STAGES
from clicktrace.journal._verdict import (
    LABELS,
    NEEDS_A_PERSON,
    answer,
    ending,
    line,
    offsets,
    verdict,
)

CID = "01JD8X3Q7E8W5V4T2N9R6M0K1A"
TAB = "01JD8X3Q7E8W5V4T2N9R6M0K1C"
T1, T2 = "a" * 32, "b" * 32
LIMITS = Thresholds(stuck_after_ms=1000)


def e(stage: str, at: float, trace: str | None = T1, **kw: Any) -> Entry:
    kw.setdefault("client_id", TAB)
    return Entry(correlation_id=CID, stage=stage, at=at, trace_id=trace, **kw)


def unsampled(entries: list[Entry]) -> list[Entry]:
    return [
        x if x.stage in ("clicked", "http", "received", "settled") else _with(x, sampled=False)
        for x in entries
    ]


def _with(x: Entry, **changes: Any) -> Entry:
    return Entry(**{**{f: getattr(x, f) for f in x.__struct_fields__}, **changes})


HAPPY = [
    e("accepted", 10, outcome="202"),
    e("stored", 11),
    e("relayed", 12),
    e("published", 13),
    e("delivered", 20, attempt=1),
    e("acked", 30, attempt=1),
    e("notified", 31, outcome="confirmed"),
]
ACCEPTED_STORED = HAPPY[:2]


def test_a_notified_confirmation_is_confirmed_and_the_text_follows_the_state() -> None:
    v = verdict(HAPPY, 100, LIMITS)
    assert (v["state"], v["stage"], v["outcome"], v["ms"], v["tab"]) == (
        "confirmed",
        "notified",
        "confirmed",
        21,
        None,
    )
    assert v["text"] == "in 21 ms"
    assert line(v) == "confirmed in 21 ms"


def test_the_tabs_view_is_reported_beside_the_servers() -> None:
    entries = [e("clicked", 5), *HAPPY, e("settled", 40, outcome="confirmed", duration_ms=35)]
    v = verdict(entries, 100, LIMITS)
    assert (v["state"], v["stage"], v["ms"]) == ("confirmed", "notified", 26)
    assert v["tab"] == {"outcome": "confirmed", "ms": 35}


def test_a_rejection_names_its_code() -> None:
    entries = [*HAPPY[:6], e("notified", 31, outcome="rejected", code="name_taken")]
    v = verdict(entries, 100, LIMITS)
    assert (v["state"], v["outcome"], v["code"]) == ("rejected", "rejected", "name_taken")
    assert line(v) == "rejected with name_taken in 21 ms"


def test_a_refusal_the_client_did_not_retry_is_refused_at_the_edge() -> None:
    refused = e("refused", 10, outcome="422", detail="POST /api/products/1/rename 422")
    v = verdict([e("clicked", 5), e("http", 6, duration_ms=8), refused], 100, LIMITS)
    assert (v["state"], v["stage"], v["outcome"]) == ("refused", "refused", "422")
    assert line(v) == "refused at the edge: POST /api/products/1/rename 422 in 5 ms"
    retried = [refused, *HAPPY]  # a 503, then accepted on the retry
    assert verdict(retried, 100, LIMITS)["state"] == "confirmed"


def test_a_deadline_dead_letter_is_dead_lettered_as_timed_out() -> None:
    entries = [
        *HAPPY[:5],
        e("dead_lettered", 40, attempt=1, outcome="deadline_exceeded", detail="deadline_exceeded"),
    ]
    v = verdict(entries, 100, LIMITS)
    assert (v["state"], v["stage"], v["outcome"]) == ("dead_lettered", "dead_lettered", "timed_out")
    assert line(v) == "dead-lettered after 1 attempt (deadline_exceeded) in 30 ms"


def test_dead_lettered_after_n_attempts_is_said_so_with_what_the_tab_was_told() -> None:
    entries = [*HAPPY[:4]]
    for n in (1, 2, 3):
        entries += [e("delivered", 20 + n, attempt=n), e("retried", 20 + n, attempt=n)]
    entries[-1] = e("dead_lettered", 30, attempt=3, detail="ValueError: no")
    entries.append(e("notified", 31, outcome="rejected", code="projection_failed"))
    v = verdict(entries, 100, LIMITS)
    assert (v["state"], v["outcome"]) == ("dead_lettered", "failed")
    assert v["text"].startswith(
        "after 3 attempts (ValueError: no); the tab was told rejected (projection_failed)"
    )


def test_a_resend_starts_the_server_side_again_and_the_verdict_follows_it() -> None:
    dead = [
        *HAPPY[:5],
        e("dead_lettered", 30, attempt=1, detail="ValueError: no", outcome="failed"),
        e("notified", 31, outcome="rejected", code="processing_failed"),
    ]
    assert ending(dead) == ("dead_lettered", "failed")
    resent = [*dead, e("resent", 500, attempt=2), e("published", 501)]
    v = verdict(resent, 600, LIMITS)
    assert (v["state"], v["stage"]) == ("in_flight", "published")  # the rejection is history
    assert ending(resent) is None
    assert verdict(resent, 5000, LIMITS)["state"] == "stuck"  # and it can stop again
    applied = [
        *resent,
        e("delivered", 502, attempt=1),
        e("acked", 503, attempt=1),
        e("notified", 504, outcome="confirmed"),
    ]
    assert verdict(applied, 600, LIMITS)["state"] == "confirmed"
    again = [*resent, e("delivered", 502, attempt=1), e("dead_lettered", 503, attempt=1)]
    v = verdict(again, 600, LIMITS)
    assert v["state"] == "dead_lettered" and v["text"].startswith("after 1 attempt")


def test_a_dead_letter_in_a_broken_trace_still_ends_as_one() -> None:
    entries = [*HAPPY[:4], e("delivered", 20, T2), e("dead_lettered", 30, T2, detail="x")]
    assert verdict(entries, 100, LIMITS)["state"] == "trace_broken"
    assert ending(entries) == ("dead_lettered", "failed")


def test_no_next_stage_within_the_threshold_is_stuck_at_the_last_stage() -> None:
    entries = HAPPY[:5]
    assert verdict(entries, 500, LIMITS)["state"] == "in_flight"
    v = verdict(entries, 5000, LIMITS)
    assert (v["state"], v["stage"], v["outcome"]) == ("stuck", "delivered", None)
    assert line(v) == "stuck at delivered: no next stage for 4980 ms"


def test_a_click_stored_but_never_published_is_lost_at_stored_whatever_the_tab_saw() -> None:
    # Finding 1: the tab's timeout used to settle it ("settled: timed_out").
    timed_out = e("settled", 3005, outcome="timed_out", duration_ms=3000)
    entries = [e("clicked", 5), e("http", 6, duration_ms=8), *ACCEPTED_STORED, timed_out]
    early = verdict(entries, 500, LIMITS)
    assert (early["state"], early["stage"]) == ("in_flight", "stored")
    v = verdict(entries, 5000, LIMITS)
    assert (v["state"], v["stage"], v["outcome"]) == ("lost", "stored", None)
    assert v["tab"] == {"outcome": "timed_out", "ms": 3000}
    assert line(v) == ("lost at stored: no next stage for 4989 ms; the tab timed out after 3000 ms")
    assert v["state"] in NEEDS_A_PERSON


def test_another_clients_command_naming_the_click_cannot_settle_it() -> None:
    # Anyone who learns a stuck click's id can send a command naming it; the edge refuses it
    # and journals "refused" under that client. The click stays the owner's: still stuck.
    intruder = e("refused", 4000, client_id="01JD8X3Q7E8W5V4T2N9R6M0K1Z", outcome="409")
    v = verdict([*HAPPY[:5], intruder], 4500, LIMITS)
    assert (v["state"], v["stage"]) == ("stuck", "delivered")
    mine = e("refused", 4000, outcome="409")  # the owner's own retry refused: that ends it
    assert verdict([*HAPPY[:5], mine], 4500, LIMITS)["state"] == "refused"


def test_where_a_click_stopped_is_its_furthest_stage_not_its_last_by_clock() -> None:
    # The demo's route journals `stored` before the edge journals `accepted` (the response).
    entries = [e("stored", 10), e("accepted", 11, outcome="202")]
    assert verdict(entries, 5000, LIMITS)["stage"] == "stored"
    retrying = [*HAPPY[:4], e("delivered", 20, attempt=1), e("retried", 21, attempt=1)]
    retrying.append(e("delivered", 22, attempt=2))
    v = verdict(retrying, 5000, LIMITS)
    assert (v["stage"], v["ms"]) == ("delivered", 4978)


@pytest.mark.parametrize(
    ("stopped", "at"),
    [(HAPPY[:4], "published"), (HAPPY[:6], "acked")],
    ids=["published but never delivered", "handled but never notified"],
)
def test_the_server_stopping_anywhere_is_lost_there(stopped: list[Entry], at: str) -> None:
    entries = [*stopped, e("settled", 3005, outcome="timed_out", duration_ms=3000)]
    assert (
        verdict(entries, 10_000, LIMITS)["state"],
        verdict(entries, 10_000, LIMITS)["stage"],
    ) == (
        "lost",
        at,
    )


def test_a_click_the_server_never_journaled_is_lost_on_the_way_there() -> None:
    entries = [
        e("clicked", 0),
        e("http", 1, duration_ms=3000),
        e("settled", 3001, outcome="timed_out", duration_ms=3001),
    ]
    assert line(verdict(entries, 2000, LIMITS)).startswith("in flight at http for ")
    v = verdict(entries, 10_000, LIMITS)
    assert (v["state"], v["stage"]) == ("lost", "http")


def test_past_the_deadline_a_stopped_click_is_lost_even_before_the_tab_reports() -> None:
    entries = [e("accepted", 10, deadline_ms=100), e("stored", 11, deadline_ms=100)]
    assert verdict(entries, 150, LIMITS)["state"] == "in_flight"
    v = verdict(entries, 2000, LIMITS)
    assert (v["state"], v["stage"]) == ("lost", "stored")
    assert v["text"].endswith("the deadline passed 1900 ms ago")


def test_a_process_restarted_after_its_last_entry_makes_a_stuck_click_unknown() -> None:
    entries = [*HAPPY[:4], e("delivered", 20, attempt=1, process="worker-1")]
    assert verdict(entries, 5000, LIMITS, restarted=None)["state"] == "stuck"
    assert verdict(entries, 5000, LIMITS, restarted={"worker-1": 10})["state"] == "stuck"
    assert verdict(entries, 5000, LIMITS, restarted={"api-1": 4000})["state"] == "stuck"
    v = verdict(entries, 5000, LIMITS, restarted={"worker-1": 4000})
    assert (v["state"], v["stage"]) == ("unknown", "delivered")
    assert line(v) == (
        "unknown after process worker-1 restarted: its entries after delivered may have "
        "died with it"
    )
    body = answer(entries, 5000, LIMITS, restarted={"worker-1": 4000})
    assert body["verdict"]["state"] == "unknown"


def test_a_stage_in_another_trace_or_without_context_breaks_the_trace() -> None:
    other = [*HAPPY[:4], e("delivered", 20, trace=T2), *HAPPY[5:]]
    v = verdict(other, 100, LIMITS)
    assert (v["state"], v["stage"], v["outcome"]) == ("trace_broken", "delivered", "confirmed")
    assert line(v).endswith("; confirmed in 21 ms")
    none = [*HAPPY[:4], e("delivered", 20, trace=None)]
    assert "arrived without trace context" in verdict(none, 100, LIMITS)["text"]


def test_a_click_whose_server_entries_are_unsampled_is_sampled_out_with_its_outcome() -> None:
    # Browser entries carry no flag of their own: they must not hide the server's.
    entries = unsampled(
        [e("clicked", 5), *HAPPY, e("received", 33), e("settled", 34, outcome="confirmed")]
    )
    v = verdict(entries, 100, LIMITS)
    assert (v["state"], v["outcome"]) == ("sampled_out", "confirmed")
    assert line(v) == "sampled out (confirmed in 26 ms)"
    mixed = [*unsampled(HAPPY[:3]), *(_with(x, sampled=True) for x in HAPPY[3:])]
    assert verdict(mixed, 100, LIMITS)["state"] == "confirmed"


def test_sampling_never_hides_a_lost_click() -> None:
    entries = unsampled([*ACCEPTED_STORED, e("settled", 3005, outcome="timed_out")])
    assert verdict(entries, 10_000, LIMITS)["state"] == "lost"


# --- clocks -----------------------------------------------------------------------------


def corrected(entries: list[Entry]) -> dict[str, float]:
    """Each stage's drawn time (the first of each)."""
    body = answer(entries, 1e6, LIMITS)
    start = min(x.at + offsets(entries)[_clock(x)] for x in entries)
    out: dict[str, float] = {}
    for s in body["stages"]:
        out.setdefault(s["stage"], start + s["since_start_ms"])
    return out


def _clock(x: Entry) -> str:
    return (
        "browser"
        if x.stage in ("clicked", "session", "http", "received", "settled")
        else (x.process or "")
    )


def test_a_late_answer_after_a_timeout_is_drawn_after_the_timeout() -> None:
    # Finding 4: the timeout was shifted ~6 s "for skew", after the answer it preceded.
    entries = [
        e("clicked", 0),
        e("http", 1, duration_ms=12),
        e("accepted", 10, outcome="202"),
        e("published", 11),
        e("delivered", 12, attempt=1),
        e("settled", 3000, outcome="timed_out", duration_ms=3000),
        e("notified", 9000, outcome="confirmed"),
        e("pushed", 9001),
        e("received", 9003),
    ]
    assert offsets(entries)["browser"] == 0
    order = [s["stage"] for s in answer(entries, 10_000, LIMITS)["stages"]]
    assert order.index("settled") < order.index("notified")
    assert order[-1] == "received"


def test_an_edge_that_journals_its_answer_after_the_tab_saw_it_shifts_nothing() -> None:
    # From a real one-host click: the middleware journals `accepted` once the response was
    # sent, 2 ms after the browser's HTTP span ended; the route's `stored` was inside it.
    entries = [
        e("http", 159.4, duration_ms=31.2),
        e("stored", 186.79, process="api-1"),
        e("accepted", 192.82, outcome="202", process="api-1"),
        e("relayed", 228.86, process="relay"),
        e("notified", 4011.56, outcome="confirmed", process="projection"),
        e("pushed", 4012.0, process="api-1"),
        e("received", 4012.9),
    ]
    assert set(offsets(entries).values()) == {0.0}


@pytest.mark.parametrize("skew", [5000.0, -5000.0])
def test_a_browser_clock_ahead_or_behind_is_corrected_into_the_bound(skew: float) -> None:
    entries = [
        e("clicked", 5 + skew),
        e("http", 6 + skew, duration_ms=10),  # the route stored at 11, answered at 10..
        *HAPPY,
        e("pushed", 32),
        e("received", 35 + skew),
        e("settled", 36 + skew, outcome="confirmed"),
    ]
    shift = offsets(entries)["browser"]
    assert -skew - 5 <= shift <= -skew + 4  # http start <= accepted, stored <= http end
    body = answer(entries, 100, LIMITS)
    stages = [s["stage"] for s in body["stages"]]
    assert stages[:3] == ["clicked", "http", "accepted"]
    assert stages[-2:] == ["received", "settled"]
    assert all(s["since_previous_ms"] >= 0 for s in body["stages"])


def test_a_browser_clock_behind_is_shifted_forward_by_the_notification_alone() -> None:
    behind = -5000.0
    entries = [e("clicked", 5 + behind), *HAPPY, e("received", 35 + behind)]
    assert offsets(entries)["browser"] == 4996  # received right at notified, no earlier
    stages = [s["stage"] for s in answer(entries, 100, LIMITS)["stages"]]
    assert stages[-1] == "received"


def test_a_relay_whose_clock_is_behind_still_relays_after_the_row_was_stored() -> None:
    entries = [
        e("accepted", 10, outcome="202", process="api-1"),
        e("stored", 9, process="api-1"),
        e("relayed", 5, process="relay"),
        e("published", 6, process="relay"),
        e("delivered", 20, attempt=1, process="worker"),
    ]
    assert offsets(entries) == {"api-1": 0, "relay": 4, "worker": 0}
    order = [s["stage"] for s in answer(entries, 100, LIMITS)["stages"]]
    assert order.index("stored") < order.index("relayed") < order.index("published")
    assert order[-1] == "delivered"


@st.composite
def one_clock_click(draw: st.DrawFn) -> list[Entry]:
    """A click whose every process reads the same clock, with realistic causal gaps."""
    gap = st.floats(0, 500, allow_nan=False)
    t = draw(st.floats(1.7e12, 1.8e12, allow_nan=False))
    processes = draw(
        st.lists(st.sampled_from(["api-1", "api-2", "relay", "worker"]), min_size=6, max_size=6)
    )
    clicked = t
    http = clicked + draw(gap)
    stored = http + draw(gap)
    http_end = stored + draw(gap)
    # The edge journals its answer once sent: before or after the browser saw it.
    accepted = stored + draw(gap)
    relayed = stored + draw(gap)
    published = relayed + draw(gap)
    delivered = published + draw(gap)
    notified = delivered + draw(gap)
    acked = notified + draw(gap)
    pushed = notified + draw(gap)
    received = pushed + draw(gap)
    # The tab may time out at any time after the click, before or after the answer.
    settled = clicked + draw(st.floats(0, 10_000, allow_nan=False))
    entries = [
        e("clicked", clicked),
        e("http", http, duration_ms=http_end - http),
        e("stored", stored, process=processes[0]),
        e("accepted", accepted, outcome="202", process=processes[0]),
        e("relayed", relayed, process=processes[1]),
        e("published", published, process=processes[1]),
        e("delivered", delivered, attempt=1, process=processes[2]),
        e("notified", notified, outcome="confirmed", process=processes[2]),
        e("acked", acked, attempt=1, process=processes[2]),
        e("pushed", pushed, process=processes[3]),
        e("received", received),
        e("settled", settled, outcome=draw(st.sampled_from(["confirmed", "timed_out"]))),
    ]
    keep = draw(st.lists(st.booleans(), min_size=len(entries), max_size=len(entries)))
    return [x for x, k in zip(entries, keep, strict=True) if k] or entries


@settings(max_examples=500, deadline=None)
@given(one_clock_click())
def test_clicks_on_one_clock_are_shifted_exactly_zero(entries: list[Entry]) -> None:
    assert set(offsets(entries).values()) <= {0.0}
    start = min(x.at for x in entries)
    for s in answer(entries, 2e12, LIMITS)["stages"]:  # drawn where each clock put it
        assert s["since_start_ms"] == pytest.approx(s["at"] - start, abs=0.01)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(STAGES), st.floats(-1e13, 1e13), st.none() | st.floats(-1e9, 1e9)
        ),
        min_size=1,
        max_size=30,
    )
)
def test_durations_are_never_negative_whatever_the_clocks(
    raw: list[tuple[str, float, float | None]],
) -> None:
    entries = [e(stage, at, duration_ms=d) for stage, at, d in raw]
    body = answer(entries, 0, LIMITS)
    for s in body["stages"]:
        assert s["since_start_ms"] >= 0 and s["since_previous_ms"] >= 0
        assert s["duration_ms"] is None or s["duration_ms"] >= 0
    assert body["verdict"]["ms"] is None or body["verdict"]["ms"] >= 0


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(STAGES),
            st.floats(0, 1e5),
            st.sampled_from([None, "202", "confirmed", "rejected", "422"]),
        ),
        min_size=1,
        max_size=20,
    ),
    st.floats(0, 2e5),
)
def test_the_text_never_repeats_the_state(
    raw: list[tuple[str, float, str | None]], now: float
) -> None:
    v = verdict([e(stage, at, outcome=o) for stage, at, o in raw], now, LIMITS)
    assert v["state"] in LABELS
    assert not v["text"].startswith((v["state"], LABELS[v["state"]], "settled"))


def test_the_answer_names_the_click_trace_first() -> None:
    entries = [*HAPPY[:4], e("delivered", 20, trace=T2), e("clicked", 1, trace=T1)]
    assert answer(entries, 100, LIMITS)["trace_ids"] == [T1, T2]
