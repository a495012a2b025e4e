"""``python -m clicktrace journal <id>``, ``python -m clicktrace stuck`` and ``python -m
clicktrace resend <id>``: the journal from a terminal, on any deployment's store.

The store is chosen by URL (``--store``, default ``$CLICKTRACE_JOURNAL_URL``); a Redis store's
key prefix by ``--prefix``, else the URL's ``?prefix=``, else ``$CLICKTRACE_CHANNEL`` the way
the demo sets it (``<channel>:journal``), else the default; an SQL store's table by
``--table`` or ``?table=``. Options go before or after the command. Exit status: 0, 1 when the
id is unknown (``journal``), a click is stuck (``stuck``) or cannot be sent again (``resend``),
2 when the command line is wrong or the store (or the bus) cannot be reached (one line on
stderr, no traceback).

``resend`` sends a dead-lettered command again through the bus (``--bus``, default
``$CLICKTRACE_BUS_URL``); the bus lives two layers above the journal, so ``python -m
clicktrace`` hands the command in (:data:`Resend`, :func:`clicktrace.console.resend`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from clicktrace.ids import parse_id
from clicktrace.journal._factory import create_store
from clicktrace.journal._store import Store
from clicktrace.journal._verdict import (
    DEFAULT_STUCK_AFTER_MS,
    NEEDS_A_PERSON,
    Thresholds,
    answer,
    line,
    verdict,
)
from clicktrace.journal._writer import restarted

__all__ = ["BUS_ENV", "CHANNEL_ENV", "STORE_ENV", "Resend", "main", "waterfall"]

WIDTH = 40
STORE_ENV = "CLICKTRACE_JOURNAL_URL"
CHANNEL_ENV = "CLICKTRACE_CHANNEL"
BUS_ENV = "CLICKTRACE_BUS_URL"
Resend = Callable[[Store, str, str, float, Thresholds, TextIO], Awaitable[int]]
"""``resend``: ``(store, correlation id, bus URL, timeout, thresholds, out)`` -> exit status."""
DEFAULT_LIMIT = 50_000
READ_AT_ONCE = 64  # reads in flight while `stuck` goes through the open clicks


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
    lines.append(f"verdict: {line(body['verdict'])}")
    return "\n".join(lines)


async def _journal(store: Store, raw: str, limits: Thresholds, out: TextIO) -> int:
    cid = parse_id(raw)
    entries = await store.read(cid) if cid else []
    if not entries:
        print(f"no journal for {raw[:64]!r}", file=out)
        return 1
    now = time.time() * 1000.0
    since = restarted(await store.processes(), now)
    print(waterfall(answer(entries, now, limits, restarted=since)), file=out)
    return 0


async def _stuck(store: Store, limit: int, limits: Thresholds, out: TextIO) -> int:
    now = time.time() * 1000.0
    ids, total = await store.open_clicks(now, limit)
    since = restarted(await store.processes(), now)
    found: list[tuple[str, str, str]] = []
    for i in range(0, len(ids), READ_AT_ONCE):
        chunk = ids[i : i + READ_AT_ONCE]
        for cid, entries in zip(chunk, await asyncio.gather(*map(store.read, chunk)), strict=True):
            if entries:
                v = verdict(entries, now, limits, restarted=since)
                if v["state"] in NEEDS_A_PERSON or v["state"] == "unknown":
                    found.append((cid, str(v["state"]), line(v)))
    for cid, _, text in found:  # the index gives them oldest first
        print(f"{cid}  {text}", file=out)
    alarms = sum(state in NEEDS_A_PERSON for _, state, _ in found)
    summary = f"{alarms} stuck"
    if len(found) > alarms:
        summary += f", {len(found) - alarms} unknown (their writer died)"
    if total > len(ids):
        summary += (
            f" in the {len(ids)} oldest of {total} open clicks (--limit {limit}: raise it to "
            "read them all)"
        )
    print(summary, file=out)
    return 1 if alarms else 0


def _options(defaults: bool) -> argparse.ArgumentParser:
    """The options every command takes, before or after it. Only the top-level parser sets
    defaults: a subcommand's parser must not overwrite what was given before the command."""
    parser = argparse.ArgumentParser(add_help=False)

    def given(default: Any) -> Any:
        return default if defaults else argparse.SUPPRESS

    parser.add_argument(
        "--store",
        default=given(os.environ.get(STORE_ENV)),
        help=f"journal store URL (default ${STORE_ENV})",
    )
    parser.add_argument(
        "--prefix",
        default=given(None),
        help=f"a Redis store's key prefix (default: the URL's ?prefix=, else "
        f"<${CHANNEL_ENV}>:journal, else clicktrace:journal)",
    )
    parser.add_argument("--table", default=given(None), help="an SQL store's table (or ?table=)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=given(5.0),
        help="seconds a Redis or PostgreSQL store may take to answer (default 5)",
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=given(DEFAULT_LIMIT),
        help=f"stuck: read at most this many open clicks, the oldest (default {DEFAULT_LIMIT})",
    )
    parser.add_argument(
        "--stuck-after-ms",
        type=float,
        default=given(DEFAULT_STUCK_AFTER_MS),
        help=f"no next stage for this long: stuck (default {DEFAULT_STUCK_AFTER_MS:.0f})",
    )
    return parser


def _store(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Store:
    url: str = args.store
    scheme = urlsplit(url).scheme.lower()
    options: dict[str, Any] = {}
    if scheme in ("redis", "rediss"):
        channel = os.environ.get(CHANNEL_ENV)
        in_url = any(key == "prefix" for key, _ in parse_qsl(urlsplit(url).query))
        if args.prefix:
            options["prefix"] = args.prefix
        elif channel and not in_url:
            options["prefix"] = f"{channel}:journal"  # as demo_app/server/wiring.py names it
        options["timeout"] = args.timeout
    elif args.prefix:
        parser.error("--prefix names a Redis store's keys; an SQL store takes --table")
    if scheme in ("postgres", "postgresql"):
        options["timeout"] = args.timeout
    if args.table:
        if scheme not in ("sqlite", "postgres", "postgresql"):
            parser.error("--table names an SQL store's table; a Redis store takes --prefix")
        options["table"] = args.table
    return create_store(url, **options)


def _where(url: str) -> str:
    """The store's URL without its user, password and query, for an error line."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def main(
    argv: list[str] | None = None, out: TextIO = sys.stdout, *, resend: Resend | None = None
) -> int:
    common = _options(defaults=False)
    parser = argparse.ArgumentParser(prog="python -m clicktrace", parents=[_options(True)])
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser(
        "journal", parents=[common], help="the stages and verdict of one correlation id"
    )
    one.add_argument("correlation_id")
    commands.add_parser(
        "stuck", parents=[common], help="every open click that is stuck, oldest first"
    )
    if resend is not None:
        again = commands.add_parser(
            "resend", parents=[common], help="send a dead-lettered command again through the bus"
        )
        again.add_argument("correlation_id")
        again.add_argument(
            "--bus", default=os.environ.get(BUS_ENV), help=f"the bus URL (default ${BUS_ENV})"
        )
    args = parser.parse_args(argv)
    if args.command == "resend" and not args.bus:
        parser.error(f"name the bus: --bus URL or ${BUS_ENV}")
    if not args.store:
        parser.error(f"name the store: --store URL or ${STORE_ENV}")
    if not args.stuck_after_ms > 0 or not args.timeout > 0:
        parser.error("--stuck-after-ms and --timeout must be positive")
    if args.limit < 1:
        parser.error("--limit must be at least 1")
    try:
        store = _store(args, parser)
    except (ValueError, TypeError, ImportError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    limits = Thresholds(args.stuck_after_ms)

    async def run() -> int:
        try:
            if args.command == "journal":
                return await _journal(store, args.correlation_id, limits, out)
            if args.command == "resend" and resend is not None:
                return await resend(store, args.correlation_id, args.bus, args.timeout, limits, out)
            return await _stuck(store, args.limit, limits, out)
        finally:
            with contextlib.suppress(Exception):  # closing a store that never answered
                await asyncio.wait_for(store.aclose(), args.timeout)

    try:
        return asyncio.run(run())
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the store is down, slow, or not a journal: one line
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        print(
            f"{parser.prog}: error: the journal store at {_where(args.store)} could not be read "
            f"({reason})",
            file=sys.stderr,
        )
        return 2
