"""The one lazy-face mechanism (PEP 562): a name's module loads on first use, once; an unknown
name is an AttributeError naming the face; ``dir()`` lists the face's ``__all__``."""

from __future__ import annotations

import subprocess
import sys
import types
from collections.abc import Iterator

import pytest

from clicktrace._lazy import lazy


@pytest.fixture
def face() -> Iterator[types.ModuleType]:
    module = types.ModuleType("clicktrace_test_face")
    names = ["dumps", "missing_on_purpose"]
    module.__getattr__, module.__dir__ = lazy(  # type: ignore[method-assign]
        module.__name__, {"dumps": "json"}, names
    )
    sys.modules[module.__name__] = module
    yield module
    del sys.modules[module.__name__]


def test_a_name_loads_its_module_on_first_use_and_is_kept(face: types.ModuleType) -> None:
    import json

    assert face.dumps is json.dumps
    assert vars(face)["dumps"] is json.dumps  # the next lookup skips __getattr__


def test_an_unknown_name_is_an_attribute_error_naming_the_face(face: types.ModuleType) -> None:
    with pytest.raises(AttributeError, match="'clicktrace_test_face' has no attribute 'nope'"):
        face.nope  # noqa: B018


def test_dir_lists_the_public_names(face: types.ModuleType) -> None:
    assert {"dumps", "missing_on_purpose"} <= set(dir(face))


@pytest.mark.parametrize(
    ("face_name", "name", "heavy"),
    [
        ("clicktrace.web", "error_response", "starlette"),
        ("clicktrace.bus", "RedisBus", "clicktrace.bus._redis"),
        ("clicktrace.notify", "Notifier", "clicktrace.notify._notifier"),
        ("clicktrace.ingest", "browser_traces_route", "starlette"),
    ],
)
def test_each_face_loads_its_heavy_module_only_when_the_name_is_used(
    face_name: str, name: str, heavy: str
) -> None:
    code = (
        f"import sys, {face_name} as f; before = {heavy!r} in sys.modules; "
        f"f.{name}; print(before, {heavy!r} in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "True"]
