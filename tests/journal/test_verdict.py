"""Verdicts from entries: each state, clock skew, durations never negative."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from clicktrace.journal import STAGES, Entry, Thresholds
from clicktrace.journal.verdict import answer, verdict

CID = "01JD8X3Q7E8W5V4T2N9R6M0K1A"
TAB = "01JD8X3Q7E8W5V4T2N9R6M0K1C"
T1, T2 = "a" * 32, "b" * 32
LIMITS = Thresholds(stuck_after_ms=1000)


def e(stage: str, at: float, trace: str | None = T1, **kw: Any) -> Entry:
    return Entry(correlation_id=CID, stage=stage, at=at, trace_id=trace, client_id=TAB, **kw)


HAPPY = [
    e("accepted", 10, outcome="202"),
    e("stored", 11),
    e("relayed", 12),
    e("published", 13),
    e("delivered", 20, attempt=1),
    e("acked", 30, attempt=1),
    e("notified", 31, outcome="confirmed"),
]


def test_a_notified_outcome_settles_the_click() -> None:
    v = verdict(HAPPY, 100, LIMITS)
    assert (v["state"], v["stage"], v["outcome"], v["ms"]) == (
        "settled",
        "notified",
        "confirmed",
        21,
    )


def test_the_browser_settle_gives_click_to_settled() -> None:
    entries = [e("clicked", 5), *HAPPY, e("settled", 40, outcome="confirmed", duration_ms=35)]
    v = verdict(entries, 100, LIMITS)
    assert (v["state"], v["stage"], v["ms"]) == ("settled", "settled", 35)


def test_no_next_stage_within_the_threshold_is_stuck_at_the_last_stage() -> None:
    entries = HAPPY[:5]
    assert verdict(entries, 500, LIMITS)["state"] == "in_flight"
    v = verdict(entries, 5000, LIMITS)
    assert (v["state"], v["stage"], v["outcome"]) == ("stuck", "delivered", None)
    assert v["text"] == "stuck at delivered: no next stage for 4980 ms"


def test_past_the_deadline_is_timed_out_at_the_last_stage() -> None:
    entries = [e("accepted", 10, deadline_ms=100), e("stored", 11, deadline_ms=100)]
    v = verdict(entries, 150, LIMITS)
    assert (v["state"], v["stage"], v["outcome"], v["ms"]) == ("stuck", "stored", "timed_out", 50)


def test_a_deadline_dead_letter_is_a_timed_out_settle() -> None:
    entries = [*HAPPY[:5], e("dead_lettered", 40, attempt=1, detail="deadline_exceeded")]
    v = verdict(entries, 100, LIMITS)
    assert (v["state"], v["outcome"]) == ("settled", "timed_out")


def test_dead_lettered_after_n_attempts_is_said_so() -> None:
    entries = [*HAPPY[:4]]
    for n in (1, 2, 3):
        entries += [e("delivered", 20 + n, attempt=n), e("retried", 20 + n, attempt=n)]
    entries[-1] = e("dead_lettered", 30, attempt=3, detail="ValueError: no")
    entries.append(e("notified", 31, outcome="rejected"))
    v = verdict(entries, 100, LIMITS)
    assert (v["state"], v["outcome"]) == ("settled", "rejected")
    assert "dead-lettered after 3 attempts" in v["text"]


def test_a_stage_in_another_trace_or_without_context_breaks_the_trace() -> None:
    other = [*HAPPY[:4], e("delivered", 20, trace=T2), *HAPPY[5:]]
    v = verdict(other, 100, LIMITS)
    assert (v["state"], v["stage"], v["outcome"]) == ("trace_broken", "delivered", "confirmed")
    none = [*HAPPY[:4], e("delivered", 20, trace=None)]
    assert verdict(none, 100, LIMITS)["text"].endswith("arrived without trace context")


def test_a_click_never_sampled_is_sampled_out() -> None:
    entries = [
        Entry(**{**{f: getattr(x, f) for f in x.__struct_fields__}, "sampled": False})
        for x in HAPPY
    ]
    assert verdict(entries, 100, LIMITS)["state"] == "sampled_out"


def test_a_browser_clock_ahead_is_shifted_back_and_the_order_restored() -> None:
    ahead = 5000.0
    entries = [
        e("clicked", 5 + ahead),
        e("http", 6 + ahead),
        *HAPPY,
        e("received", 35 + ahead),
        e("settled", 36 + ahead, outcome="confirmed"),
    ]
    body = answer(entries, 100, LIMITS)
    stages = [s["stage"] for s in body["stages"]]
    assert stages[:3] == ["clicked", "http", "accepted"]
    assert stages[-2:] == ["received", "settled"]
    assert all(s["since_previous_ms"] >= 0 for s in body["stages"])


def test_a_browser_clock_behind_is_shifted_forward() -> None:
    behind = -5000.0
    entries = [e("clicked", 5 + behind), *HAPPY, e("received", 35 + behind)]
    stages = [s["stage"] for s in answer(entries, 100, LIMITS)["stages"]]
    assert stages[-1] == "received"


def test_the_answer_names_the_click_trace_first() -> None:
    entries = [*HAPPY[:4], e("delivered", 20, trace=T2), e("clicked", 1, trace=T1)]
    assert answer(entries, 100, LIMITS)["trace_ids"] == [T1, T2]


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
