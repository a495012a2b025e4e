"""What the verdict logic says about real clicks: the journals the distributed e2e stacks left on
the shared Redis (read only; keys ``*-e2e:journal:*``), judged by this checkout's
``clicktrace.journal._verdict`` and, with ``--before FILE``, by another version of that module
(e.g. ``git show REV:py_sdk/clicktrace/journal/_verdict.py > /tmp/before.py``).

Prints, per version: how many ordinary clicks (not timed out) had the browser's clock shifted
(one host, one clock: every shift is invented); of the answers that came after a tab's
timeout, how many had that timeout drawn after them; the verdict states now (default 30 s
threshold); the verdict line of each click stored but never published (the demo's "publish
without the outbox").

    .venv/bin/python -m pytest e2e/test_faults.py -q     # leaves such journals behind
    .venv/bin/python bench/verdicts.py [--before /tmp/before.py] [--redis URL]
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from collections import Counter
from types import ModuleType
from typing import Any

import redis

from clicktrace.journal import Entry, Thresholds
from clicktrace.journal import _verdict as current
from clicktrace.journal._store import decode_many


def load(path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location("verdict_before", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def clicks(url: str) -> list[list[Entry]]:
    client: Any = redis.Redis.from_url(url)
    out = []
    for key in client.scan_iter(match="*-e2e:journal:*"):
        if key.endswith(b":recent"):
            continue
        entries = decode_many(client.lrange(key, 0, -1))
        stages = {e.stage for e in entries}
        if {"http", "accepted"} <= stages:
            out.append(entries)
    return out


def browser_shift(module: ModuleType, entries: list[Entry]) -> float:
    if hasattr(module, "offsets"):
        return float(module.offsets(entries).get("browser", 0.0))
    return float(module._skew(entries))  # the version before offsets()


def timeout_drawn_after_answer(module: ModuleType, entries: list[Entry]) -> bool:
    order = [e.stage for _, e in module.ordered(entries)]
    answers = [order.index(s) for s in ("notified", "pushed") if s in order]
    return order.index("settled") > min(answers)


def report(name: str, module: ModuleType, all_clicks: list[list[Entry]]) -> None:
    def timed_out(c: list[Entry]) -> list[Entry]:
        return [e for e in c if e.stage == "settled" and e.outcome == "timed_out"]

    ordinary = [c for c in all_clicks if not timed_out(c)]
    shifts = [s for s in (browser_shift(module, c) for c in ordinary) if abs(s) > 0.0005]
    late = [
        c
        for c in all_clicks
        if timed_out(c)
        and any(e.stage in ("notified", "pushed") and e.at > timed_out(c)[0].at for e in c)
    ]
    now, limits = time.time() * 1000.0, Thresholds()
    states = Counter(module.verdict(c, now, limits)["state"] for c in all_clicks)
    span = f" ({min(shifts):.1f}..{max(shifts):.1f} ms)" if shifts else ""
    print(f"{name}:")
    print(f"  ordinary clicks, browser clock shifted: {len(shifts)} of {len(ordinary)}{span}")
    after = sum(timeout_drawn_after_answer(module, c) for c in late)
    print(f"  late answers with the tab's earlier timeout drawn after them: {after} of {len(late)}")
    print(f"  verdicts now: {dict(states)}")
    for c in all_clicks:
        stages = {e.stage for e in c}
        if "stored" in stages and not stages & {"relayed", "published"} and "settled" in stages:
            v = module.verdict(c, now, limits)
            shown = current.line(v) if "tab" in v else f"{v['state']}: {v['text']}"
            print(f"  stored, never published: {shown}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", help="another _verdict.py to compare with")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    found = clicks(args.redis)
    print(f"{len(found)} clicks with the browser's HTTP span and the edge's answer")
    if args.before:
        report(f"before ({args.before})", load(args.before), found)
    report("this checkout", current, found)


if __name__ == "__main__":
    main()
