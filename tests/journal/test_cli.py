"""``python -m clicktrace journal|stuck`` against a real store file."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from pathlib import Path

from clicktrace.ids import new_id
from clicktrace.journal import Entry, create_store
from clicktrace.journal.cli import main


async def test_journal_prints_a_waterfall_and_stuck_lists_the_stuck(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/j.sqlite3"
    store = create_store(url)
    stuck, fine = new_id(), new_id()
    old = time.time() * 1000 - 120_000
    await store.write(
        [
            Entry(correlation_id=stuck, stage="accepted", at=old, process="api:1"),
            Entry(correlation_id=stuck, stage="delivered", at=old + 5, attempt=1, process="w:2"),
            Entry(correlation_id=fine, stage="accepted", at=old),
            Entry(correlation_id=fine, stage="notified", at=old + 9, outcome="confirmed"),
        ]
    )
    await store.aclose()
    # The CLI runs its own event loop: run it in a subprocess, as a user would.
    done = subprocess.run(
        [sys.executable, "-m", "clicktrace", "--store", url, "journal", stuck],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1].startswith("accepted      |█")
    assert "#1" in lines[2] and "w:2" in lines[2]
    assert lines[-1].startswith("verdict: stuck: stuck at delivered")
    listed = subprocess.run(
        [sys.executable, "-m", "clicktrace", "--store", url, "stuck"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert listed.returncode == 1
    assert listed.stdout.splitlines()[0].startswith(f"{stuck}  stuck at delivered")
    assert listed.stdout.splitlines()[-1] == "1 stuck"


def test_an_unknown_or_hostile_id_is_said_so(tmp_path: Path) -> None:
    out = io.StringIO()
    assert main(["--store", "memory://", "journal", "../../etc/passwd" * 20], out) == 1
    assert out.getvalue().startswith("no journal for")
