"""The package root: a handful of lazy names (PEP 562), one version, nothing else loaded."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import pytest

import clicktrace


def test_importing_the_root_loads_only_the_version_and_the_lazy_face() -> None:
    code = "import sys, clicktrace; print(sorted(m for m in sys.modules if 'clicktrace' in m))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "['clicktrace', 'clicktrace._lazy', 'clicktrace._version']"


def test_every_root_name_resolves_to_its_subpackages_object() -> None:
    from clicktrace._wiring import install
    from clicktrace.notify import Notifier

    assert len(clicktrace.__all__) <= 15
    for name in clicktrace.__all__:
        assert getattr(clicktrace, name) is not None, name
    assert clicktrace.install is install
    assert clicktrace.Notifier is Notifier
    assert set(clicktrace.__all__) <= set(dir(clicktrace))


def test_an_unknown_root_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="Extracted"):
        clicktrace.Extracted  # noqa: B018  # an internal: it lives in clicktrace.propagation


def test_one_version_everywhere() -> None:
    from clicktrace._version import __version__

    assert clicktrace.__version__ == __version__ == importlib.metadata.version("clicktrace")
