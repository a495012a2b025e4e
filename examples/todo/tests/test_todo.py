"""The todo list in Chromium: a new todo is confirmed by the projection in one trace from the
click to the notification; a duplicate is rejected and rolled back; another tab sees a new
todo without a reload."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from clicktrace.testing import (
    OtlpReceiver,
    assert_one_trace,
    flush_spans,
    trace_problems,
    wait_settled,
)


def add(page: Page, title: str) -> None:
    page.get_by_placeholder("What needs doing?").fill(title)
    page.get_by_role("button", name="Add").click()


def test_a_new_todo_is_confirmed_in_one_trace(
    page: Page, todo_server: str, clicktrace_otlp: OtlpReceiver
) -> None:
    page.goto(todo_server)
    add(page, "buy milk")

    outcome = wait_settled(page, nth=0)
    assert outcome.status == "confirmed"
    expect(page.get_by_role("listitem").filter(has_text="buy milk")).to_have_count(1)

    flush_spans(page)
    spans = clicktrace_otlp.wait_for(
        lambda spans: (
            not trace_problems(
                spans, trace_id=outcome.trace_id, root_span_id=outcome.action_span_id
            )
        )
    )
    assert_one_trace(spans, trace_id=outcome.trace_id, root_span_id=outcome.action_span_id)


def test_a_duplicate_is_rejected_and_rolled_back(page: Page, todo_server: str) -> None:
    page.goto(todo_server)
    add(page, "walk the dog")
    assert wait_settled(page, nth=0).status == "confirmed"

    add(page, "walk the dog")
    outcome = wait_settled(page, nth=1)
    assert (outcome.status, outcome.error_code) == ("rejected", "duplicate")
    expect(page.get_by_role("listitem").filter(has_text="walk the dog")).to_have_count(1)
    expect(page.get_by_role("alert")).to_contain_text("already on the list")


def test_another_tab_sees_a_new_todo_without_reloading(page: Page, todo_server: str) -> None:
    other = page.context.new_page()
    other.goto(todo_server)
    page.goto(todo_server)
    add(page, "water the plants")
    assert wait_settled(page, nth=0).status == "confirmed"

    # No reload, no click in the other tab: the projection's update arrives on its socket.
    expect(other.get_by_role("listitem").filter(has_text="water the plants")).to_have_count(1)
    add(other, "feed the cat")
    expect(page.get_by_role("listitem").filter(has_text="feed the cat")).to_have_count(1)
    other.close()
