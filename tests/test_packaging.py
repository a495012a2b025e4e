"""What the published package asks of an app: the OpenTelemetry API as its only OTel
requirement, ranges rather than pins, the SDK and python-socketio as extras that fail at
construction with the install hint, and no dev tools in the metadata."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

PYPROJECT = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]

SCRIPT = r'''
import sys

class Block:
    """Pretend the OpenTelemetry SDK and python-socketio are not installed."""
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"socketio", "engineio"} or name.startswith("opentelemetry.sdk"):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None

sys.meta_path.insert(0, Block())
import clicktrace
from clicktrace import Notifier, TokenSigner
from clicktrace.ingest import browser_traces_route
import clicktrace.ingest, clicktrace.notify
from clicktrace.notify import SocketIOTransport, WebSocketTransport

signer = TokenSigner(secret=None)
Notifier(signer, WebSocketTransport())
for make in (
    lambda: Notifier(signer),
    lambda: Notifier(signer, SocketIOTransport()),
    lambda: browser_traces_route(client_verifier=signer.verify),
):
    try:
        make()
    except ImportError as exc:
        print(exc)
    else:
        print("no error")
'''


def test_without_the_sdk_and_socketio_the_package_imports_and_construction_names_the_extra() -> (
    None
):
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == [
        "python-socketio is not installed: pip install 'clicktrace[socketio]'",
        "python-socketio is not installed: pip install 'clicktrace[socketio]'",
        "opentelemetry-sdk is not installed: pip install 'clicktrace[sdk]'",
    ]


def test_importing_the_package_loads_no_sdk_socket_or_broker_module() -> None:
    code = (
        "import sys, clicktrace; print(sorted({m.split('.')[0] + ('.sdk' if '.sdk' in m "
        "else '') for m in sys.modules}))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    for heavy in (
        "socketio",
        "engineio",
        "opentelemetry.sdk",
        "redis",
        "aiohttp",
        "aio_pika",
        "nats",
        "asyncpg",
        "aiosqlite",
    ):
        assert f"'{heavy}'" not in loaded


def test_the_opentelemetry_api_is_the_only_required_otel_package_and_is_a_range() -> None:
    otel = [d for d in PROJECT["dependencies"] if d.startswith("opentelemetry")]
    assert otel == ["opentelemetry-api>=1.43,<2"]


def test_no_requirement_pins_an_exact_version_and_there_is_no_dev_extra() -> None:
    extras = PROJECT["optional-dependencies"]
    assert "dev" not in extras
    assert "dev" in PYPROJECT["dependency-groups"]
    for requirement in PROJECT["dependencies"] + [r for rs in extras.values() for r in rs]:
        assert not re.search(r"==|~=", requirement), requirement


def test_the_sdk_and_socketio_are_extras() -> None:
    extras = PROJECT["optional-dependencies"]
    assert any(r.startswith("opentelemetry-sdk") for r in extras["sdk"])
    assert any(r.startswith("python-socketio") for r in extras["socketio"])
    assert not any(
        r.startswith(("opentelemetry-sdk", "python-socketio")) for r in PROJECT["dependencies"]
    )


def test_the_consoles_built_page_is_in_the_wheel() -> None:
    """The console's assets (``console/_static``, built from js_sdk/console and committed)
    ship in the wheel as hatch's artifacts, whatever a checkout's ignore rules say: every
    file there now, and the two the console's page loads."""
    from fnmatch import fnmatch

    root = Path(__file__).resolve().parents[1]
    wheel = PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert "py_sdk/clicktrace" in wheel["packages"]
    static = root / "py_sdk" / "clicktrace" / "console" / "_static"
    present = [p.relative_to(root).as_posix() for p in static.rglob("*") if p.is_file()]
    wanted = [f"{static.relative_to(root).as_posix()}/console.{ext}" for ext in ("js", "css")]
    for path in [*present, *wanted]:
        assert any(fnmatch(path, pattern) for pattern in wheel["artifacts"]), path
