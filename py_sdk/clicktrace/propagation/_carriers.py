"""Getter/Setter pairs generic over the carrier, as OpenTelemetry's propagators have them.

One ``inject``/``extract`` serves every hop; these adapt it to each carrier's shape:
ASGI header lists (bytes pairs, lowercase names), mappings (JSON metadata, plain header
dicts in any case; broker headers by their exact names), and objects whose attributes are the
fields (the bus envelope's frozen ``Metadata``). An adapter for another transport's carrier
lives with that transport.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any, Protocol, TypeVar

__all__ = [
    "ASGI_GETTER",
    "ASGI_SETTER",
    "ATTRIBUTE_GETTER",
    "EXACT_MAPPING_GETTER",
    "MAPPING_GETTER",
    "MAPPING_SETTER",
    "Getter",
    "Setter",
]

C_contra = TypeVar("C_contra", contravariant=True)


class Getter(Protocol[C_contra]):
    def get(self, carrier: C_contra, key: str) -> list[str] | None:
        """Every value of ``key`` in ``carrier`` (``key`` is lowercase), or ``None``."""
        ...


class Setter(Protocol[C_contra]):
    def set(self, carrier: C_contra, key: str, value: str) -> None: ...


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("latin-1")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # JSON metadata carries the deadline as a number
    return None


class AsgiHeadersGetter:
    def get(self, carrier: list[tuple[bytes, bytes]], key: str) -> list[str] | None:
        name = key.encode("latin-1")
        found = [v.decode("latin-1") for k, v in carrier if k == name]
        return found or None


class AsgiHeadersSetter:
    def set(self, carrier: list[tuple[bytes, bytes]], key: str, value: str) -> None:
        name = key.encode("latin-1")
        carrier[:] = [(k, v) for k, v in carrier if k != name]
        carrier.append((name, value.encode("latin-1")))


def _any_case(carrier: Mapping[str, Any], key: str) -> Any:
    for k, v in carrier.items():
        if isinstance(k, str) and k.lower() == key:
            return v
    return None


class MappingGetter:
    """Exact key first, then a case-insensitive match (HTTP header dicts come in any case)."""

    any_case = True

    def get(self, carrier: Mapping[str, Any], key: str) -> list[str] | None:
        value = carrier.get(key)
        if value is None and self.any_case:
            value = _any_case(carrier, key)
        if value is None:
            return None
        if isinstance(value, list | tuple):
            texts = [t for t in map(_text, value) if t is not None]
            return texts or None
        text = _text(value)
        return None if text is None else [text]


class ExactMappingGetter(MappingGetter):
    """The exact key only: broker headers (Redis stream fields, AMQP and NATS headers), whose
    names are case-sensitive and which W3C propagators write in lower case. A miss costs one
    lookup instead of a scan of every header."""

    any_case = False


class MappingSetter:
    def set(self, carrier: MutableMapping[str, Any], key: str, value: str) -> None:
        carrier[key] = value


class AttributeGetter:
    """Fields as attributes (a msgspec Struct such as the envelope's ``Metadata``): read in
    place, without converting the object to a mapping first. Read-only, since such carriers
    are frozen; a writer injects into a mapping and builds the object from it."""

    def get(self, carrier: object, key: str) -> list[str] | None:
        value = getattr(carrier, key, None)
        if value is None:
            return None
        text = value if type(value) is str else _text(value)
        return None if text is None else [text]


ASGI_GETTER = AsgiHeadersGetter()
ASGI_SETTER = AsgiHeadersSetter()
ATTRIBUTE_GETTER = AttributeGetter()
MAPPING_GETTER = MappingGetter()
EXACT_MAPPING_GETTER = ExactMappingGetter()
MAPPING_SETTER = MappingSetter()
