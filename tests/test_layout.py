"""The package's shape, held by tests: no module imports a layer above its own, the lowest
layers load no web framework, every module has its test file, and the demo and the example
use only public names.

The layers follow the data's path (README, "Layout"); a module may import its own layer or a
lower one. A package face may hand on a name of a higher layer lazily (its ``if TYPE_CHECKING:``
block and its PEP 562 ``__getattr__``): the journal's face names its HTTP route, which loads only
when it is used, and a test below holds that importing the journal loads no web framework.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "py_sdk" / "clicktrace"

# lowest first; the longest matching prefix decides a module's layer
LAYERS: dict[str, int] = {
    "clicktrace.protocol": 0,
    "clicktrace.ids": 0,
    "clicktrace.context": 0,
    "clicktrace._optional": 0,
    "clicktrace._lazy": 0,
    "clicktrace._sql": 0,
    "clicktrace._version": 0,
    "clicktrace.propagation": 1,
    "clicktrace.sampling": 1,
    "clicktrace.spans": 1,
    "clicktrace.journal": 2,
    "clicktrace.metrics": 2,
    "clicktrace.logs": 2,
    "clicktrace.web": 3,
    "clicktrace.envelope": 3,
    "clicktrace.claims": 3,
    "clicktrace.asgi": 4,
    "clicktrace.httpx": 4,
    "clicktrace.bus": 4,
    "clicktrace.outbox": 5,
    "clicktrace.notify": 5,
    "clicktrace.projection": 6,
    "clicktrace.commands": 6,
    "clicktrace.step": 6,
    "clicktrace.prometheus": 6,
    "clicktrace.ingest": 6,
    "clicktrace.health": 6,
    "clicktrace.console": 6,
    "clicktrace._wiring": 7,
    "clicktrace.testing": 7,
    "clicktrace.__main__": 7,
    "clicktrace": 8,  # the root face names everything, lazily
}
ROUTE_LAYER = 6  # an HTTP route stands on web/ whatever its package (the journal's, health's)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int:
    if module.rsplit(".", 1)[-1].lstrip("_") == "route":
        return ROUTE_LAYER
    while module not in LAYERS:
        module = module.rpartition(".")[0]
    return LAYERS[module]


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(path: Path) -> set[str]:
    """Every clicktrace module ``path`` imports, at any depth (functions included)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        lazy = (isinstance(node, ast.If) and _is_type_checking(node)) or (
            isinstance(node, ast.FunctionDef) and node.name == "__getattr__"
        )
        if lazy and path.name == "__init__.py":
            return  # a face handing a name on lazily (PEP 562): loaded only when it is used
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("clicktrace"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base.startswith("clicktrace"):
                found.add(base)
                # `from clicktrace import context`: the name is a module when one exists
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    if (PACKAGE.parent / Path(*sub.split("."))).with_suffix(".py").exists():
                        found.add(sub)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    found.discard(name)
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_a_layer_above_its_own(path: Path) -> None:
    name = _module_name(path)
    own = layer_of(name)
    upward = sorted(m for m in imports_of(path) if layer_of(m) > own and m != "clicktrace")
    assert upward == [], f"{name} (layer {own}) imports {upward}"


def test_the_layer_table_names_every_package_and_top_module() -> None:
    for path in PACKAGE.iterdir():
        if path.name.startswith("__") or path.name == "py.typed":
            continue
        assert f"clicktrace.{path.name.removesuffix('.py')}" in LAYERS, path.name


LIGHT = """
import sys
import clicktrace.journal, clicktrace.bus, clicktrace.envelope
from clicktrace.journal import record, MemoryStore, Journal
from clicktrace.bus import MemoryBus
heavy = sorted(
    m for m in sys.modules
    if m.split(".")[0] in {"starlette", "fastapi", "socketio", "engineio", "uvicorn"}
    or m.startswith(("clicktrace.asgi", "clicktrace.web", "clicktrace.notify"))
)
print(heavy)
"""


def test_the_journal_and_the_bus_load_no_web_framework_and_no_edge() -> None:
    done = subprocess.run([sys.executable, "-c", LIGHT], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# A module whose tests cannot run in tests/: the Playwright helpers need the real browser.
ELSEWHERE = {"testing/_browser.py": ROOT / "e2e" / "test_browser_helpers.py"}


def _test_file_for(path: Path) -> Path:
    relative = path.relative_to(PACKAGE)
    if str(relative) in ELSEWHERE:
        return ELSEWHERE[str(relative)]
    return ROOT / "tests" / relative.parent / f"test_{path.stem.lstrip('_')}.py"


UNTESTED_ON_PURPOSE = {
    "__init__.py",  # faces: tested through their names (test_root.py, each package's tests)
    "__main__.py",  # `python -m clicktrace`: the journal CLI, tested in tests/journal
    "_version.py",
}


@pytest.mark.parametrize(
    "path",
    [p for p in MODULES if p.name not in UNTESTED_ON_PURPOSE],
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_every_module_has_its_test_file(path: Path) -> None:
    test_file = _test_file_for(path)
    assert test_file.exists(), f"{path.relative_to(ROOT)} has no {test_file.relative_to(ROOT)}"


API = ROOT / "docs" / "api.md"
API_HEADER = """# The public API

What `clicktrace` exports: every public module (a package face or a module whose name does not
start with `_`) and its `__all__`. `tests/test_layout.py` holds this file against the code, so a
face changes only on purpose: after such a change run `python tests/test_layout.py` to record it
here, and say what changed for users in CHANGELOG.md. The JS package's entries are pinned by
`js_sdk/test/core.test.ts` and listed in [js_sdk/README.md](../js_sdk/README.md).

"""


def public_api() -> str:
    """The public API as docs/api.md records it: one line per public module, names sorted."""
    lines: list[str] = []
    every: list[str] = []
    for path in MODULES:
        name = _module_name(path)
        if any(part.startswith("_") for part in name.split(".")[1:]):
            continue
        names = sorted(getattr(importlib.import_module(name), "__all__", ()))
        every += names
        listed = ", ".join(f"`{n}`" for n in names)
        lines.append(f"- `{name}` ({len(names)}): {listed}")
    total = f"{len(lines)} public modules, {len(every)} names ({len(set(every))} distinct)."
    return API_HEADER + "\n".join(lines) + f"\n\n{total}\n"


def test_the_public_api_is_the_one_on_record() -> None:
    assert public_api() == API.read_text(), (
        "the public API changed: if on purpose, run `python tests/test_layout.py` to record it "
        "in docs/api.md, and say what changed for users in CHANGELOG.md"
    )


def _public_names() -> set[str]:
    """Every module path and name a user may import: faces' and public modules' ``__all__``."""
    names: set[str] = set()
    for path in MODULES:
        name = _module_name(path)
        if any(part.startswith("_") for part in name.split(".")[1:]):
            continue
        names.add(name)
        module = importlib.import_module(name)
        names.update(f"{name}.{n}" for n in getattr(module, "__all__", ()))
    return names


def test_the_demo_and_the_example_import_only_public_names() -> None:
    public = _public_names()
    private: list[str] = []
    for folder in (ROOT / "demo_app" / "server", ROOT / "examples"):
        for path in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "clicktrace"
                ):
                    for alias in node.names:
                        full = f"{node.module}.{alias.name}"
                        if full not in public:
                            private.append(f"{path.relative_to(ROOT)}: {full}")
                elif isinstance(node, ast.Import):
                    private += [
                        f"{path.relative_to(ROOT)}: {a.name}"
                        for a in node.names
                        if a.name.startswith("clicktrace") and a.name not in public
                    ]
    assert private == []


if __name__ == "__main__":
    API.write_text(public_api())
    print(f"recorded {API.relative_to(ROOT)}")
