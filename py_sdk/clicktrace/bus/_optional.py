"""Lazy imports of optional broker clients, failing with the exact install hint."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["require"]


def require(module: str, extra: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{module.split('.')[0]} is not installed: pip install 'clicktrace[{extra}]'"
        ) from exc
