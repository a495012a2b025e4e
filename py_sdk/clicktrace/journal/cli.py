"""``python -m clicktrace journal <id>`` and ``python -m clicktrace stuck``: the journal from a
terminal, the store chosen by URL (``--store``, default ``$CLICKTRACE_JOURNAL_URL``)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import Any, TextIO

from clicktrace.ids import parse_id
from clicktrace.journal.factory import create_store
from clicktrace.journal.store import Store
from clicktrace.journal.verdict import DEFAULT_STUCK_AFTER_MS, Thresholds, answer, verdict

__all__ = ["main", "waterfall"]

WIDTH = 40


def waterfall(body: dict[str, Any]) -> str:
    """The route's answer as a terminal waterfall: one bar per stage on one time axis."""
    stages = body["stages"]
    total = max((s["since_start_ms"] for s in stages), default=0.0) or 1.0
    lines = [f"correlation id {body['correlation_id']}   trace {', '.join(body['trace_ids'])}"]
    for s in stages:
        col = min(WIDTH - 1, int(s["since_start_ms"] / total * (WIDTH - 1)))
        bar = " " * col + "█" + " " * (WIDTH - col - 1)
        extra = " ".join(
            str(x)
            for x in (f"#{s['attempt']}" if s["attempt"] else None, s["outcome"], s["detail"])
            if x
        )
        lines.append(
            f"{s['stage']:<14}|{bar}| {s['since_start_ms']:>9.1f} ms  "
            f"+{s['since_previous_ms']:.1f}  {s['process'] or '-'}  {extra}".rstrip()
        )
    lines.append(f"verdict: {body['verdict']['state']}: {body['verdict']['text']}")
    return "\n".join(lines)


async def _journal(store: Store, raw: str, limits: Thresholds, out: TextIO) -> int:
    cid = parse_id(raw)
    entries = await store.read(cid) if cid else []
    if not entries:
        print(f"no journal for {raw[:64]!r}", file=out)
        return 1
    print(waterfall(answer(entries, time.time() * 1000.0, limits)), file=out)
    return 0


async def _stuck(store: Store, window: float, limit: int, limits: Thresholds, out: TextIO) -> int:
    now = time.time() * 1000.0
    found = []
    for cid in await store.recent(now - window * 1000.0, limit):
        entries = await store.read(cid)
        if entries:
            v = verdict(entries, now, limits)
            if v["state"] == "stuck":
                found.append((min(e.at for e in entries), cid, v["text"]))
    for _, cid, text in sorted(found):
        print(f"{cid}  {text}", file=out)
    print(f"{len(found)} stuck", file=out)
    return 1 if found else 0


def main(argv: list[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(prog="python -m clicktrace")
    parser.add_argument(
        "--store",
        default=os.environ.get("CLICKTRACE_JOURNAL_URL"),
        help="journal store URL (default $CLICKTRACE_JOURNAL_URL)",
    )
    parser.add_argument("--stuck-after-ms", type=float, default=DEFAULT_STUCK_AFTER_MS)
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("journal", help="the stages and verdict of one correlation id")
    one.add_argument("correlation_id")
    many = commands.add_parser("stuck", help="the stuck correlation ids of a recent window")
    many.add_argument("--window", type=float, default=900.0, help="seconds (default 900)")
    many.add_argument("--limit", type=int, default=1000)
    args = parser.parse_args(argv)
    if not args.store:
        parser.error("name the store: --store URL or $CLICKTRACE_JOURNAL_URL")
    store = create_store(args.store)
    limits = Thresholds(args.stuck_after_ms)

    async def run() -> int:
        try:
            if args.command == "journal":
                return await _journal(store, args.correlation_id, limits, out)
            return await _stuck(store, args.window, args.limit, limits, out)
        finally:
            await store.aclose()

    return asyncio.run(run())
