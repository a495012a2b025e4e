"""The kit's face is the pytest plugin: inert until a fixture is asked for."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_the_plugin_loads_nothing_until_a_fixture_is_asked_for(tmp_path: Path) -> None:
    (tmp_path / "test_plain.py").write_text(
        "import sys\n\n"
        "def test_plain():\n"
        "    assert 'clicktrace.testing' in sys.modules\n"
        "    assert not [m for m in sys.modules if m.startswith(('opentelemetry.sdk',\n"
        "                'opentelemetry.proto', 'clicktrace.testing._receiver'))]\n\n"
        "def test_asked(clicktrace_spans):\n"
        "    assert 'opentelemetry.sdk.trace' in sys.modules\n"
    )
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            str(tmp_path),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 passed" in run.stdout
