"""The operator console in real Chromium, on the demo with its console on: an operator signs
in, pastes (part of) an id a tab showed, and reads the click's waterfall with the server's
verdict, for a confirmed, a rejected, a dead-lettered and a lost click, on the Redis and the
PostgreSQL journal stores; a dead-lettered command sent again is applied once and the tab that
sent it hears of it; without the cookie every console route answers 401 or 404 and leaks
nothing; the main controls have labels and a keyboard order."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from clicktrace.ids import new_id
from clicktrace.testing import unique_name
from e2e.conftest import Demo, running_demo
from e2e.test_loop import Wire, rename

pytestmark = pytest.mark.e2e

P = "/clicktrace/console"
TOKEN = secrets.token_hex(16)
REDIS = "redis://127.0.0.1:6379/0"
POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
DEADLINE_MS = "3000"
ANSWER_ID = re.compile(r'"correlation_id":\s*"[0-9A-Z]{26}"')
# The routes a signed-out caller tries; {id} is a click that exists.
ROUTES = [
    "",
    "/",
    "/assets/console.js",
    "/assets/console.css",
    "/api/clicks",
    "/api/clicks?q={part}",
    "/api/clicks/{id}",
    "/api/attention",
    "/api/latency?minutes=15",
    "/api/health",
    "/no-such-route",
]


def _journal_url(store: str) -> str:
    if store == "redis":
        return REDIS  # the demo's channel (unique per run) prefixes its keys
    return f"{POSTGRES}?table={unique_name('journal', sql=True)}"


@pytest.fixture(scope="module", params=["redis", "postgres"])
def console(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Demo]:
    """The embedded demo with its console, fault panel and operator token, journaling to a
    fresh Redis prefix or PostgreSQL table."""
    store = str(request.param)
    with running_demo(
        tmp_path_factory.mktemp(f"console-{store}"),
        CLICKTRACE_FAULTS="1",
        CLICKTRACE_OPERATOR_TOKEN=TOKEN,
        CLICKTRACE_JOURNAL_URL=_journal_url(store),
        CLICKTRACE_CHANNEL=unique_name("console"),
        CLICKTRACE_TRACE_URL="https://traces.example/trace/{trace_id}",
    ) as demo:
        yield demo


def faults(page: Page, demo: Demo, **changes: object) -> None:
    """Set the demo's faults as its panel does (every one not named goes off)."""
    body = {
        "fail_next": 0,
        "slow": False,
        "stopped": False,
        "drop_context": False,
        "no_outbox": False,
    }
    reply = page.request.post(
        f"{demo.url}/api/faults",
        headers={"authorization": f"Bearer {TOKEN}"},
        data={**body, **changes},
    )
    assert reply.ok, reply.text()


@pytest.fixture
def heard(page: Page) -> Wire:
    """The notifications the shopper's tab receives (listening before it opens)."""
    recorded = Wire()
    page.on("websocket", recorded.on_websocket)
    return recorded


@pytest.fixture
def tab(page: Page, console: Demo, heard: Wire) -> Iterator[Page]:
    """A shopper's tab on the demo, with a short deadline; every fault off afterwards."""
    page.goto(f"{console.url}/?deadline={DEADLINE_MS}")
    expect(page.get_by_test_id("product-1")).to_be_visible()
    yield page
    faults(page, console)


@pytest.fixture
def operator(browser: Browser, console: Demo) -> Iterator[Page]:
    """The operator's own browser (cookies of its own), signed in to the console."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    reply = page.goto(f"{console.url}{P}")
    assert reply is not None and reply.status == 401
    token = page.locator('input[name="token"]')
    expect(token).to_have_attribute("type", "password")
    token.fill(TOKEN)
    token.press("Enter")
    expect(page.get_by_role("heading", name="clicktrace console")).to_be_visible()
    yield page
    assert errors == []
    context.close()


def clicked(tab: Page, product_id: int, name: str, status: str) -> str:
    """Rename ``product_id`` in the tab; the correlation id the tab shows, once ``status``."""
    rename(tab, product_id, name)
    last = tab.get_by_test_id("last-action")
    expect(last.get_by_test_id("status")).to_have_text(status)
    correlation = last.get_by_test_id("correlation")
    expect(correlation).to_have_text(re.compile(r"^[0-9A-Z]{26}$"))
    return correlation.inner_text()


def told(tab: Page, heard: Wire, correlation_id: str, status: str) -> None:
    """Wait until the tab received a ``status`` notification for ``correlation_id``."""
    for _ in range(300):
        if any(
            n.get("correlation_id") == correlation_id and n.get("status") == status
            for n in heard.notifications
        ):
            return
        tab.wait_for_timeout(100)  # lets the page's events in; a bound, not a timing assertion
    raise AssertionError(
        f"the tab was never told {status} for {correlation_id}: {heard.notifications}"
    )


def find(operator: Page, text: str) -> Locator:
    """Paste ``text`` into the console's search; the waterfall it opens."""
    operator.get_by_label("Correlation id, whole or part").fill(text)
    operator.get_by_role("button", name="Find").click()
    return operator.get_by_test_id("click").get_by_test_id("waterfall")


def test_the_operator_reads_each_click_s_verdict_from_a_pasted_id(
    tab: Page, operator: Page, console: Demo
) -> None:
    confirmed = clicked(tab, 1, f"Kettle {new_id()[-6:]}", "confirmed")
    taken = tab.get_by_test_id("product-2").get_by_test_id("name").inner_text()
    rejected = clicked(tab, 3, taken, "rejected")  # the projection refuses a name in use
    faults(tab, console, fail_next=3)
    dead = clicked(tab, 4, f"Grinder {new_id()[-6:]}", "rejected")
    faults(tab, console, no_outbox=True)
    lost = clicked(tab, 5, f"Scale {new_id()[-6:]}", "timed_out")
    faults(tab, console)

    # Whole, or a part in lower case, as a user reads it off a screen.
    waterfall = find(operator, confirmed)
    expect(waterfall).to_have_attribute("data-verdict", "confirmed")
    expect(waterfall.get_by_test_id("stage-notified")).to_be_visible()
    expect(waterfall.get_by_test_id("trace-link")).to_have_attribute(
        "href", re.compile(r"^https://traces\.example/trace/[0-9a-f]{32}$")
    )
    # Every process of the click has its lane, the browser's too.
    expect(waterfall.locator('[data-testid="lane"][data-process="browser"]')).to_be_visible()

    waterfall = find(operator, rejected[-12:].lower())
    expect(waterfall).to_have_attribute("data-correlation", rejected)
    expect(waterfall).to_have_attribute("data-verdict", "rejected")

    waterfall = find(operator, dead)
    expect(waterfall).to_have_attribute("data-verdict", "dead_lettered")
    expect(waterfall.get_by_test_id("diagnosis")).to_contain_text("dead-lettered")
    expect(waterfall.get_by_test_id("stage-retried")).to_have_count(2)
    expect(operator.get_by_test_id("resend")).to_be_visible()

    # Lost once the server's stuck threshold passed with the tab given up (the demo's: 30 s).
    waterfall = find(operator, lost)
    expect(waterfall.get_by_test_id("stage-stored")).to_be_visible()
    expect(waterfall).to_have_attribute("data-verdict", "lost", timeout=90_000)
    expect(waterfall.get_by_test_id("diagnosis")).to_contain_text("stored")

    # The lists: recent clicks with their verdicts, and what needs a person.
    recent = operator.get_by_test_id("recent")
    expect(recent.locator(f'[data-correlation="{confirmed}"]')).to_have_attribute(
        "data-verdict", "confirmed"
    )
    attention = operator.get_by_test_id("attention")
    expect(attention.locator(f'[data-correlation="{dead}"]')).to_be_visible()
    expect(attention.locator(f'[data-correlation="{lost}"]')).to_be_visible()
    expect(attention.locator(f'[data-correlation="{confirmed}"]')).to_have_count(0)
    expect(operator.get_by_test_id("count-dead_lettered")).not_to_contain_text(re.compile(r"^0 "))
    # Filtered by verdict, the list holds that verdict only.
    operator.get_by_label("Verdict").select_option("dead_lettered")
    expect(recent.locator(f'[data-correlation="{dead}"]')).to_be_visible()
    expect(recent.locator(f'[data-correlation="{confirmed}"]')).to_have_count(0)
    expect(operator.get_by_test_id("latency").locator("svg").first).to_be_visible()
    expect(operator.get_by_test_id("health-status")).to_have_text(re.compile("Healthy|Degraded"))


@pytest.mark.parametrize("console", ["redis"], indirect=True)
def test_a_dead_lettered_command_sent_again_is_applied_once_and_the_tab_is_told(
    tab: Page, heard: Wire, operator: Page, console: Demo
) -> None:
    faults(tab, console, fail_next=3)
    name = f"Press {new_id()[-6:]}"
    dead = clicked(tab, 6, name, "rejected")
    faults(tab, console)
    row = tab.get_by_test_id("product-6").get_by_test_id("name")
    expect(row).not_to_have_text(name)

    waterfall = find(operator, dead)
    expect(waterfall).to_have_attribute("data-verdict", "dead_lettered")
    operator.get_by_test_id("resend").click()
    dialog = operator.get_by_test_id("resend-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Send again").click()
    expect(dialog).to_be_hidden()
    expect(operator.get_by_test_id("console-status")).to_contain_text("again")
    # A new attempt of the same click, applied: the verdict moves on, the name changed.
    expect(waterfall).to_have_attribute("data-verdict", "confirmed")
    expect(waterfall.get_by_test_id("stage-acked")).to_have_count(1)
    expect(operator.get_by_test_id("resend")).to_have_count(0)
    products = tab.request.get(f"{console.url}/api/products").json()
    assert [p["name"] for p in products if p["id"] == 6] == [name]
    # The tab that sent it, still open, is told: first rejected (the dead letter), then confirmed.
    told(tab, heard, dead, "rejected")
    told(tab, heard, dead, "confirmed")
    # Once applied it is no dead letter any more: a second resend is refused, not applied.
    again = operator.request.post(
        f"{console.url}{P}/api/clicks/{dead}/resend", headers={"x-clicktrace-console": "1"}
    )
    assert again.status == 409
    assert again.json()["error"]["code"] == "not_dead_lettered"


@pytest.mark.parametrize("console", ["redis"], indirect=True)
def test_without_the_cookie_every_console_route_answers_401_or_404_and_leaks_nothing(
    tab: Page, browser: Browser, console: Demo
) -> None:
    known = clicked(tab, 1, f"Mug {new_id()[-6:]}", "confirmed")
    unknown = new_id()
    stranger = browser.new_context()
    try:
        request = stranger.request
        for route in ROUTES:
            answers = []
            for cid in (known, unknown):
                url = f"{console.url}{P}{route.format(id=cid, part=cid[-8:])}"
                reply = request.get(url, max_redirects=0)
                assert reply.status in (401, 404), (route, reply.status)
                body = reply.text()
                assert known not in body and known[-8:] not in body, route
                assert "Traceback" not in body and "console.js" not in body, route
                # The answer's own correlation id (every response has a fresh one) aside.
                body = ANSWER_ID.sub("", body.replace(cid, "").replace(cid[-8:], ""))
                answers.append((reply.status, body))
            # A known id and an unknown one read the same: nothing says which exists.
            assert answers[0] == answers[1], route
        for path in (f"/api/clicks/{known}/resend", "/session/end"):
            reply = request.post(f"{console.url}{P}{path}", headers={"x-clicktrace-console": "1"})
            assert reply.status in (401, 403, 404), (path, reply.status)
        wrong = request.post(
            f"{console.url}{P}/session", form={"token": "not-the-token"}, max_redirects=0
        )
        assert wrong.status in (401, 429)
        assert "set-cookie" not in wrong.headers
        assert "not-the-token" not in wrong.text()
    finally:
        stranger.close()


@pytest.mark.parametrize("console", ["redis"], indirect=True)
def test_a_signed_in_post_without_the_console_header_is_forbidden(
    operator: Page, console: Demo
) -> None:
    reply = operator.request.post(f"{console.url}{P}/api/clicks/{new_id()}/resend")
    assert reply.status == 403


@pytest.mark.parametrize("console", ["redis"], indirect=True)
def test_the_console_serves_its_assets_under_a_strict_policy(operator: Page, console: Demo) -> None:
    reply = operator.request.get(f"{console.url}{P}")
    policy = reply.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    shipped = Path(__file__).resolve().parents[1] / "py_sdk/clicktrace/console/_static"
    for name in ("console.js", "console.css"):
        asset = operator.request.get(f"{console.url}{P}/assets/{name}")
        assert asset.ok and asset.body() == (shipped / name).read_bytes()


@pytest.mark.parametrize("console", ["redis"], indirect=True)
def test_the_main_controls_have_labels_and_a_keyboard_order(
    tab: Page, operator: Page, console: Demo
) -> None:
    faults(tab, console, fail_next=3)
    dead = clicked(tab, 2, f"Tray {new_id()[-6:]}", "rejected")
    faults(tab, console)

    for label in (
        "Correlation id, whole or part",
        "Verdict",
        "Action",
        "Client",
        "Started",
        "live",
    ):
        expect(operator.get_by_label(label, exact=True)).to_be_visible()
    expect(operator.get_by_role("search")).to_be_visible()
    expect(operator.get_by_role("navigation", name="views")).to_be_visible()
    expect(operator.get_by_role("button", name="Sign out")).to_be_visible()

    # From the top of the page: the views' links, sign out, then the search box.
    operator.locator("body").focus()
    order: list[str] = []
    for _ in range(8):
        operator.keyboard.press("Tab")
        order.append(
            operator.evaluate(
                "() => { const e = document.activeElement; return e.id || e.textContent.trim() }"
            )
        )
    assert order[:7] == [
        "Find a click",
        "Needs a person",
        "Recent",
        "Latency",
        "Health",
        "Sign out",
        "q",
    ]
    assert order[7] == "Find"

    # Keyboard only: type the id, Enter, the click opens with the focus on it; Tab reaches
    # Resend; Enter asks first, the focus on Cancel; Escape leaves the click as it was.
    operator.keyboard.press("Shift+Tab")
    operator.keyboard.type(dead[-10:])
    operator.keyboard.press("Enter")
    click = operator.get_by_test_id("click")
    expect(click).to_be_focused()
    expect(click.get_by_test_id("waterfall")).to_have_attribute("data-verdict", "dead_lettered")
    resend = operator.get_by_test_id("resend")
    for _ in range(10):
        operator.keyboard.press("Tab")
        if resend.evaluate("e => e === document.activeElement"):
            break
    expect(resend).to_be_focused()
    operator.keyboard.press("Enter")
    dialog = operator.get_by_test_id("resend-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    operator.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(click.get_by_test_id("waterfall")).to_have_attribute("data-verdict", "dead_lettered")


@pytest.mark.parametrize("console", ["redis"], indirect=True)
def test_the_demo_links_to_its_console(tab: Page) -> None:
    expect(tab.get_by_role("link", name="operator console")).to_have_attribute("href", P)


@pytest.mark.parametrize("console", ["redis"], indirect=True)
def test_signing_out_ends_the_session(operator: Page, console: Demo) -> None:
    operator.get_by_role("button", name="Sign out").click()
    expect(operator.locator('input[name="token"]')).to_be_visible()
    assert operator.request.get(f"{console.url}{P}/api/clicks").status == 401


def test_without_a_console_the_routes_do_not_exist(demo: Demo, page: Page) -> None:
    for route in ("", "/api/clicks", "/assets/console.js"):
        reply = page.request.get(f"{demo.url}{P}{route}")
        assert reply.status == 404, route
    page.goto(demo.url)
    expect(page.get_by_test_id("product-1")).to_be_visible()
    expect(page.get_by_test_id("node")).to_be_visible()  # the config came
    expect(page.get_by_role("link", name="operator console")).to_have_count(0)
