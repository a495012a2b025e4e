"""Every tab stays true (issue 21, finding 1), in real Chromium on the demo, over Socket.IO and
the plain WebSocket: the projection publishes each rename to the ``catalogue`` topic, every
tab's products store watches it, so a tab sees another tab's change without a reload, two tabs
editing one product end on the same (the newest) state, and the loser of a race sees the
winner's state. Names are unique per test: the demo is shared by the whole session."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from clicktrace.ids import new_id
from e2e.conftest import Demo

pytestmark = pytest.mark.e2e


@pytest.fixture(params=["socketio", "websocket"])
def transport(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def any_demo(request: pytest.FixtureRequest, transport: str) -> Demo:
    demo: Demo = request.getfixturevalue("demo" if transport == "socketio" else "websocket_demo")
    return demo


@pytest.fixture
def tabs(browser: Browser, any_demo: Demo, transport: str) -> Iterator[tuple[Page, Page]]:
    """Two tabs of two browser contexts (two visitors), each with the catalogue shown."""
    contexts = [browser.new_context(), browser.new_context()]
    pages = [context.new_page() for context in contexts]
    for page in pages:
        page.goto(f"{any_demo.url}/?transport={transport}")
        expect(page.get_by_test_id("product-1")).to_be_visible()
        expect(page.get_by_test_id("connection")).to_have_class("connection connected")
    yield pages[0], pages[1]
    for context in contexts:
        context.close()


def rename(page: Page, product_id: int, name: str) -> None:
    row = page.get_by_test_id(f"product-{product_id}")
    row.get_by_test_id("rename-input").fill(name)
    row.get_by_test_id("rename-button").click()


def settled(page: Page, product_id: int) -> str:
    """The outcome of this tab's command on the product, once it has one."""
    cell = page.get_by_test_id(f"product-{product_id}").get_by_test_id("entity-status")
    expect(cell).to_have_text(re.compile("^(confirmed|rejected|timed_out)$"))
    return cell.inner_text()


def name_of(page: Page, product_id: int) -> str:
    return page.get_by_test_id(f"product-{product_id}").get_by_test_id("name").inner_text()


def server_name(demo: Demo, product_id: int) -> str:
    products = httpx.get(demo.url + "/api/products", timeout=10).json()
    name: str = next(p["name"] for p in products if p["id"] == product_id)
    return name


def unique(label: str) -> str:
    return f"{label} {new_id()[-6:]}"


def test_tab_b_sees_tab_a_change_without_reload(tabs: tuple[Page, Page]) -> None:
    a, b = tabs
    name = unique("Live cup")
    rename(a, 1, name)
    assert settled(a, 1) == "confirmed"
    expect(b.get_by_test_id("product-1").get_by_test_id("name")).to_have_text(name)


def test_two_tabs_editing_one_product_converge_on_both_screens(
    tabs: tuple[Page, Page], any_demo: Demo
) -> None:
    a, b = tabs
    first, second = unique("From A"), unique("From B")
    rename(a, 2, first)
    rename(b, 2, second)
    assert (settled(a, 2), settled(b, 2)) == ("confirmed", "confirmed")
    truth = server_name(any_demo, 2)  # the rename the projection applied last
    assert truth in (first, second)
    for page in (a, b):
        expect(page.get_by_test_id("product-2").get_by_test_id("name")).to_have_text(truth)


def test_the_loser_of_a_race_sees_the_winners_state(
    tabs: tuple[Page, Page], any_demo: Demo
) -> None:
    a, b = tabs
    contested = unique("Only one")
    before = {3: name_of(a, 3), 4: name_of(a, 4)}
    rename(a, 3, contested)
    rename(b, 4, contested)  # product names are unique: one of the two is refused
    got = {3: settled(a, 3), 4: settled(b, 4)}
    assert sorted(got.values()) == ["confirmed", "rejected"]
    winner = next(pid for pid, status in got.items() if status == "confirmed")
    loser = 4 if winner == 3 else 3
    assert server_name(any_demo, winner) == contested
    for page in (a, b):  # the loser's tab too: the winner's rename, its own rolled back
        expect(page.get_by_test_id(f"product-{winner}").get_by_test_id("name")).to_have_text(
            contested
        )
        expect(page.get_by_test_id(f"product-{loser}").get_by_test_id("name")).to_have_text(
            before[loser]
        )
