"""Click → confirmed in real Chromium against the embedded demo (``make demo``'s settings:
memory bus, SQLite, Socket.IO), with the journal's stages of every click.

The demo runs as a subprocess on a port from ``CLICKTRACE_TEST_PORTS``; Chromium (Debian's,
driven by Playwright) opens it and renames products one click at a time, each click after the
previous one settled. Times are taken in the page: ``performance.now()`` just before the
button's click is dispatched, and a MutationObserver on the row's status cell for the moment it
reads "pending" and then "confirmed". After the clicks, the journal route (operator token)
gives each click's stages; the gaps between them are the stage breakdown:

======== =========================================================== =====
stage    from → to                                                    whose
======== =========================================================== =====
browser  clicked → the command's HTTP span starts (plugin, session)   SDK
HTTP     HTTP span start → ``stored`` (wire, edge middleware, route)  both
commit   ``stored`` → ``accepted`` (the transaction commits, 202)     app
relay    ``accepted`` → ``relayed`` (the relay wakes, reads the row)  SDK
publish  ``relayed`` → ``published`` (bus producer)                  SDK
consume  ``published`` → ``delivered`` (bus hop to the consumer)      SDK
notify   ``delivered`` → ``notified`` (the projection's transaction) app
push     ``notified`` → ``pushed`` (hub, transport)                   SDK
settle   ``pushed`` → ``settled`` (socket to the tab, plugin settle)  SDK
======== =========================================================== =====

The SDK's share is the sum of its stages' medians over the median click → settled.

    .venv/bin/python bench/click.py [--clicks 200] [--warm-up 20] [--transport websocket]

Needs the built web app (``make web``) and Chromium (``/usr/bin/chromium`` or ``$CHROMIUM``).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, sync_playwright

from clicktrace.testing import free_port

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PRODUCTS = 6  # the demo's catalogue
# (name, first stage, second stage, whose time it is)
STAGES = (
    ("browser", "clicked", "http", "SDK"),
    ("HTTP", "http", "stored", "both"),
    ("commit", "stored", "accepted", "app"),
    ("relay wake-up", "accepted", "relayed", "SDK"),
    ("publish", "relayed", "published", "SDK"),
    ("consume", "published", "delivered", "SDK"),
    ("notify", "delivered", "notified", "app"),
    ("push", "notified", "pushed", "SDK"),
    ("settle", "pushed", "settled", "SDK"),
)

# Before the page's scripts: every socket frame's arrival time (the notification's, for the
# split of the last hop between the wire and the tab's own work).
FRAMES = """
window.__clickbenchFrames = []
const NativeWebSocket = window.WebSocket
window.WebSocket = class extends NativeWebSocket {
  constructor(...args) {
    super(...args)
    this.addEventListener('message', () => window.__clickbenchFrames.push(performance.now()))
  }
}
"""

# In the page: dispatch the click, resolve with the times the status cell read "pending" and
# then a settled status, in ms after the dispatch.
MEASURE = """
async (id) => {
  const row = document.querySelector(`[data-testid="product-${id}"]`)
  const cell = row.querySelector('[data-testid="entity-status"]')
  const button = row.querySelector('[data-testid="rename-button"]')
  return await new Promise((resolve) => {
    let t0 = 0
    let handler = null
    let pending = null
    const seen = () => {
      const now = performance.now()
      const status = cell.textContent.trim()
      if (status === 'pending' && pending === null) pending = now - t0
      else if (pending !== null && status !== 'pending') {
        observer.disconnect()
        const reference = document.querySelector('[data-testid="correlation"]')
        // The command's request as the browser's resource timing saw it (ms after t0).
        const posts = performance.getEntriesByType('resource').filter(
          (e) => e.name.endsWith(`/api/products/${id}/rename`) && e.startTime >= t0)
        const post = posts[posts.length - 1]
        const http = post ? {
          start: post.startTime - t0, request: post.requestStart - t0,
          response: post.responseStart - t0, end: post.responseEnd - t0,
        } : null
        const frames = window.__clickbenchFrames.filter((t) => t > t0 && t <= now)
        const frame = frames.length ? frames[frames.length - 1] - t0 : null
        resolve({ handler, pending, settled: now - t0, status, http, frame,
                  correlation: reference?.textContent ?? '' })
      }
    }
    const observer = new MutationObserver(seen)
    observer.observe(cell, { childList: true, characterData: true, subtree: true })
    performance.clearResourceTimings()  // the buffer holds 250 entries, then none
    t0 = performance.now()
    button.click()  // the submit handler runs in here: the store's action, the plugin
    handler = performance.now() - t0
  })
}
"""


def percentiles(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {}

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {
        "p50": statistics.median(ordered),
        "p90": at(0.90),
        "p99": at(0.99),
        "max": ordered[-1],
    }


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"demo exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/api/products", timeout=1) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"demo did not answer within 60 s:\n{log.read_text()}")


def journal(url: str, token: str, correlation_id: str) -> dict[str, Any] | None:
    request = urllib.request.Request(
        f"{url}/clicktrace/journal/{correlation_id}",
        headers={"authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            body: dict[str, Any] = json.loads(reply.read())
            return body
    except urllib.error.HTTPError:
        return None


def first_times(answer: dict[str, Any]) -> dict[str, float]:
    """Each stage's first time (ms since the click's first stage, skew-corrected)."""
    times: dict[str, float] = {}
    for stage in answer["stages"]:
        times.setdefault(stage["stage"], float(stage["since_start_ms"]))
    # Browser spans are journaled at their start (HTTP, session) or end; the waterfall's rule.
    for stage in answer["stages"]:
        if stage["stage"] == "settled":
            times["settled"] = float(stage["since_start_ms"])
    return times


def click_once(page: Page, product: int, name: str) -> dict[str, Any]:
    row = page.get_by_test_id(f"product-{product}")
    row.get_by_test_id("rename-input").fill(name)
    result: dict[str, Any] = page.evaluate(MEASURE, product)
    return result


@dataclass
class Demo:
    label: str
    tree: Path
    url: str = ""
    results: list[dict[str, Any]] = field(default_factory=list)
    answers: list[dict[str, Any]] = field(default_factory=list)


@contextmanager
def running(demo: Demo, data: Path, token: str, transport: str) -> Iterator[None]:
    """The demo of ``demo.tree`` (its own SDK first on the path) on a port of the range."""
    log = data / "demo.log"
    port = free_port()
    demo.url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "DATA_DIR": str(data),
        "CLICKTRACE_OPERATOR_TOKEN": token,
        "CLICKTRACE_TRANSPORT": transport,
        "PYTHONPATH": str(demo.tree / "py_sdk"),
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        env.pop(name, None)  # make demo: spans recorded and dropped
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "demo_app.server"],
            cwd=demo.tree,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    print(f"{demo.label}: demo pid {process.pid} on {demo.url}", file=sys.stderr)
    try:
        _wait_ready(demo.url, process, log)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clicks", type=int, default=200)
    parser.add_argument("--warm-up", type=int, default=20)
    parser.add_argument("--transport", choices=("socketio", "websocket"), default="socketio")
    parser.add_argument(
        "--compare",
        type=Path,
        metavar="TREE",
        help="also run the demo of another checkout (its web app built), clicks alternating",
    )
    parser.add_argument("--json", type=Path, help="also write every click's figures here")
    args = parser.parse_args()
    demos = [Demo("this tree", ROOT)]
    if args.compare:
        demos.insert(0, Demo(str(args.compare), args.compare.resolve()))
    for demo in demos:
        if not (demo.tree / "demo_app" / "web" / "dist" / "index.html").exists():
            raise SystemExit(f"{demo.tree}: the web app is not built: run `make web`")
    token = secrets.token_hex(16)
    load = os.getloadavg()
    with ExitStack() as stack:
        for demo in demos:
            data = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="clickbench-")))
            stack.enter_context(running(demo, data, token, args.transport))
        _drive(demos, token, args)
    end = os.getloadavg()
    print(
        f"# click → confirmed, {args.transport}, {args.clicks} clicks after {args.warm_up} "
        f"warm-up, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average "
        f"{load[0]:.2f} before, {end[0]:.2f} after (1 min)"
    )
    for demo in demos:
        _report(demo)
    if args.json:
        args.json.write_text(
            json.dumps({d.label: {"results": d.results, "journals": d.answers} for d in demos})
        )


def _drive(demos: list[Demo], token: str, args: argparse.Namespace) -> None:
    """Warm every demo up, then click them in turn (one click each, round after round), so
    load on the machine falls on each alike."""
    run = secrets.token_hex(2)
    query = "?transport=websocket" if args.transport == "websocket" else ""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        pages: list[tuple[Demo, Page]] = []
        for demo in demos:
            page = browser.new_page()
            pages.append((demo, page))
            page.add_init_script(FRAMES)
            page.goto(demo.url + "/" + query)
            page.get_by_test_id("product-1").wait_for()
            for i in range(args.warm_up):
                click_once(page, 1 + i % PRODUCTS, f"bench {run} w{i}")
        for i in range(args.clicks):
            for demo, page in pages:
                demo.results.append(click_once(page, 1 + i % PRODUCTS, f"bench {run} {i}"))
        # The browser's spans (clicked, http, settled) come in batches every 2 s: wait for
        # each demo's last click's before reading the journal.
        for demo in demos:
            last = demo.results[-1]["correlation"]
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                answer = journal(demo.url, token, last)
                if answer and any(s["stage"] == "settled" for s in answer["stages"]):
                    break
                time.sleep(0.25)
        browser.close()
    for demo in demos:
        demo.answers = [
            a for r in demo.results if (a := journal(demo.url, token, r["correlation"]))
        ]


def _report(demo: Demo) -> None:
    results, answers = demo.results, demo.answers
    settled = [r for r in results if r["status"] == "confirmed"]
    print(f"\n## {demo.label}: {len(settled)} of {len(results)} clicks confirmed\n")
    print("| in the page (ms) | p50 | p90 | p99 | max |")
    print("|---|---:|---:|---:|---:|")
    for label, key, rows in (
        ("click → handler returned", "handler", results),
        ("click → pending shown", "pending", results),
        ("click → notification's socket frame", "frame", settled),
        ("click → confirmed shown", "settled", settled),
    ):
        p = percentiles([float(r[key]) for r in rows if r.get(key) is not None])
        if not p:
            continue
        print(f"| {label} | {p['p50']:.1f} | {p['p90']:.1f} | {p['p99']:.1f} | {p['max']:.1f} |")
    after = [float(r["settled"]) - float(r["frame"]) for r in settled if r.get("frame") is not None]
    if after:
        p = percentiles(after)
        print(
            f"| notification's frame → confirmed shown | {p['p50']:.1f} | {p['p90']:.1f} | "
            f"{p['p99']:.1f} | {p['max']:.1f} |"
        )
    gaps: dict[str, list[float]] = {name: [] for name, *_ in STAGES}
    totals: list[float] = []
    for answer in answers:
        times = first_times(answer)
        if "clicked" in times and "settled" in times:
            totals.append(times["settled"] - times["clicked"])
        for name, start, stop, _ in STAGES:
            if start in times and stop in times:
                gaps[name].append(times[stop] - times[start])
    print(f"\n| stage ({len(answers)} journals) | from → to | whose | n | p50 ms | p99 ms |")
    print("|---|---|---|---:|---:|---:|")
    sdk = 0.0
    for name, start, stop, whose in STAGES:
        values = gaps[name]
        if not values:
            print(f"| {name} | {start} → {stop} | {whose} | 0 | | |")
            continue
        p = percentiles(values)
        if whose == "SDK":
            sdk += p["p50"]
        print(
            f"| {name} | {start} → {stop} | {whose} | {len(values)} | {p['p50']:.2f} | "
            f"{p['p99']:.2f} |"
        )
    if totals:
        whole = percentiles(totals)
        print(
            f"| **clicked → settled** (journal) | | | {len(totals)} | {whole['p50']:.2f} | "
            f"{whole['p99']:.2f} |"
        )
        print(
            f"\nSDK's stages (browser, relay wake-up, publish, consume, push, settle): "
            f"{sdk:.2f} ms of the median {whole['p50']:.2f} ms ({100 * sdk / whole['p50']:.0f} %)"
        )


if __name__ == "__main__":
    main()
