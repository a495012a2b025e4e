"""Instruction counts under valgrind's callgrind, the figure the bench scripts compare across
runs on a shared, noisy machine (wall time is not).

Each bench script has a hidden mode that runs one variant N times after a warm-up; it is run
here as a whole process, once with N = 0 and once with N, and the difference divided by N is
the cost of one operation, whatever the imports and the warm-up cost.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

__all__ = ["MISSING", "available", "per_operation", "total", "totals"]

K = TypeVar("K", bound=Hashable)
MISSING = "instruction counts skipped: valgrind is missing (apt-get install -y valgrind)"


def available() -> bool:
    return shutil.which("valgrind") is not None


def total(script: str, args: Sequence[str]) -> int:
    """Instructions executed by ``python script *args``: imports, warm-up and all."""
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    command += [sys.executable, script, *args]
    # The parent's sys.path, so the child imports the same code (a worktree, a checkout).
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    match = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode or match is None:
        raise RuntimeError(f"{' '.join(args)} under callgrind failed:\n{done.stderr[-3000:]}")
    return int(match.group(1))


def totals(script: str, runs: Mapping[K, Sequence[str]], jobs: int) -> dict[K, int]:
    """:func:`total` of each run's arguments, ``jobs`` processes at a time."""
    with ThreadPoolExecutor(jobs) as pool:
        counts = list(pool.map(lambda args: total(script, args), runs.values()))
    return dict(zip(runs, counts, strict=True))


def per_operation(
    script: str,
    variants: Sequence[K],
    args_of: Callable[[K, int], Sequence[str]],
    n: int,
    jobs: int,
) -> dict[K, float]:
    """Instructions per operation of each variant: its process with ``n`` operations less
    the same process with none, over ``n``."""
    runs = {(v, count): args_of(v, count) for v in variants for count in (0, n)}
    got = totals(script, runs, jobs)
    return {v: (got[v, n] - got[v, 0]) / n for v in variants}
