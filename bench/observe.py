"""What ``clicktrace.metrics.observe`` costs per journal entry, in instructions (callgrind).

Each stage runs in its own process under valgrind's callgrind: imports and a warm-up of every
stage, then ``n`` calls of that stage; a baseline process does the same with no calls, so
(total - baseline) / n is the cost of one call, free of start-up and imports. Entries are
built beforehand: only ``observe`` is counted.

    .venv/bin/python bench/observe.py [--calls 10000] [--jobs 2]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import callgrind  # bench/callgrind.py, beside this script

from clicktrace import metrics
from clicktrace.ids import new_id
from clicktrace.journal import Entry

WARM_UP = 2000
CID = new_id()


def _entries(stage: str, **fields: object) -> list[Entry]:
    return [
        Entry(correlation_id=CID, stage=stage, at=1000.0 + i, **fields)  # type: ignore[arg-type]
        for i in range(64)
    ]


# stage: entries a recording site makes (the common, successful path)
STAGES: dict[str, Callable[[], list[Entry]]] = {
    "accepted (counter)": lambda: _entries("accepted", outcome="202"),
    "published (counter + histogram)": lambda: _entries("published", duration_ms=3.0),
    "delivered (counter + histogram)": lambda: _entries("delivered", attempt=1, duration_ms=2.0),
    "notified (counter + histogram)": lambda: _entries("notified", outcome="confirmed"),
    "stored (no instrument)": lambda: _entries("stored"),
}
BASELINE = "baseline"


def _provider(kind: str) -> None:
    if kind == "sdk":
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader

        metrics.use(MeterProvider(metric_readers=[InMemoryMetricReader()]))


def run_counted(provider: str, stage: str, n: int) -> None:
    _provider(provider)
    every = {name: make() for name, make in STAGES.items()}
    observe = metrics.observe
    for entries in every.values():  # the same warm-up in every process, baseline included
        for i in range(WARM_UP):
            observe(entries[i & 63])
    if stage == BASELINE:
        return
    entries = every[stage]
    # notified is timed from the delivery in hand (consume→notify): the warm-up's last
    # delivered entry is for the same click.
    for i in range(n):
        observe(entries[i & 63])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--count", nargs=2, metavar=("PROVIDER", "STAGE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.count:
        run_counted(args.count[0], args.count[1], args.calls)
        return
    if not callgrind.available():
        print(callgrind.MISSING)
        return
    runs = {
        (p, s, args.calls): ["--count", p, s, "--calls", str(args.calls)]
        for p in ("none", "sdk")
        for s in (BASELINE, *STAGES)
    }
    totals = callgrind.totals(__file__, runs, args.jobs)
    print(f"observe(), instructions per call (callgrind), {args.calls} calls after a warm-up")
    print("| stage | no MeterProvider | SDK MeterProvider |\n|---|---:|---:|")
    for stage in STAGES:
        cells = [
            (totals[p, stage, args.calls] - totals[p, BASELINE, args.calls]) / args.calls
            for p in ("none", "sdk")
        ]
        print(f"| {stage} | {cells[0]:,.0f} | {cells[1]:,.0f} |")


if __name__ == "__main__":
    main()
