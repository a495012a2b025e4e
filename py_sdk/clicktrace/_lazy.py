"""Lazy package faces (PEP 562): a face lists its public names and the module that defines
each; a name's module loads on its first use. One mechanism for every face, so that importing a
face (``clicktrace``, ``clicktrace.web``, ``clicktrace.bus``, ...) loads no web framework, no
broker client and no SDK until a name that needs one is used."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy"]


def lazy(
    package: str, where: Mapping[str, str], names: Iterable[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of the face ``package``: ``where`` maps each lazy
    name to the module that defines it; ``names`` is the face's ``__all__``."""
    public = tuple(names)

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)  # later lookups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *public})

    return __getattr__, __dir__
