"""Lazy imports of optional dependencies (broker clients, the OpenTelemetry SDK, servers),
failing with the exact install hint. The one mechanism for every extra; it sits under the layers
(ids, context, ... notify) so that any of them can use it without importing another."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["require"]


def require(module: str, extra: str, *, package: str | None = None) -> ModuleType:
    """``module``, or an ImportError naming ``package`` (default: the top-level module)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        name = package or module.split(".")[0]
        raise ImportError(f"{name} is not installed: pip install 'clicktrace[{extra}]'") from exc
