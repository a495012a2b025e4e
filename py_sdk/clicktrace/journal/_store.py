"""The one small interface every journal store implements, what they share: the limits, the
open-click marks and the rule that merges them, and one encoder and one decoder for the stores
that keep bytes.

A store keeps entries by correlation id. It is written in batches by the
:class:`~clicktrace.journal._writer.Journal` (never on the request path, except the memory
ring, whose ``add`` is a few dict operations) and read by the route, ``/clicktrace/health``
and the CLI.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple, Protocol, runtime_checkable

import msgspec

from clicktrace.journal._entry import BROWSER_STAGES, Entry

__all__ = [
    "DEFAULT_MAX_AGE_SECONDS",
    "DEFAULT_MAX_ENTRIES",
    "DEFAULT_MAX_OPEN",
    "MAX_ENTRIES_PER_ID",
    "MAX_PROCESSES",
    "NONE",
    "Marks",
    "Process",
    "Store",
    "SyncStore",
    "dead_letters",
    "decode",
    "decode_many",
    "encode",
    "marks",
    "merge",
    "settles",
]

DEFAULT_MAX_ENTRIES = 100_000
DEFAULT_MAX_AGE_SECONDS = 3600.0
# A correlation id that loops (a message redelivered forever) must not fill a store alone.
MAX_ENTRIES_PER_ID = 200
# The open-click index: at most this many ids (the oldest go first, counted in ``dropped``).
DEFAULT_MAX_OPEN = 100_000
# The process table: a fleet larger than this is not one app's journal.
MAX_PROCESSES = 1024
NONE = -1.0
"""A time that is not there, in :class:`Marks` (Unix ms are never negative; Lua and SQL take
a number more easily than a null)."""


_FINAL = frozenset({"confirmed", "rejected"})
_STILL_GOING = frozenset({None, "202"})
_ENDS = frozenset({"dead_lettered", "refused"})


def settles(entry: Entry) -> bool:
    """Whether ``entry`` ends its click on the server side: an outcome sent to the tab, a dead
    letter, a refusal at the edge, or a synchronous answer. The browser's own ``settled`` does
    not: it is the tab's view, and the server side may still have stopped somewhere."""
    stage = entry.stage
    if stage == "notified":
        return entry.outcome in _FINAL
    if stage == "accepted":
        return entry.outcome not in _STILL_GOING
    return stage in _ENDS


Marks = tuple[float, float, float]
"""What one batch says about one click's place in the open index (:data:`NONE` when absent):
its first server-side entry, its last settling entry, its last 202 (or ``resent``). A plain
tuple: the writer makes one per click of every batch."""


def marks(entries: Iterable[Entry]) -> dict[str, Marks]:
    """Per correlation id, the marks of ``entries``; ids with browser entries only are left
    out (a tab's spans never open nor close a click)."""
    # On the writer's path for every entry: plain lists, settles() spelled inline, one tuple
    # per id at the end.
    acc: dict[str, list[float]] = {}
    for e in entries:
        stage = e.stage
        if stage in BROWSER_STAGES:
            continue
        at = e.at
        m = acc.get(e.correlation_id)
        if m is None:
            m = acc[e.correlation_id] = [at, NONE, NONE]
        elif at < m[0]:
            m[0] = at
        if stage == "accepted" or stage == "resent":
            if stage == "resent" or e.outcome in _STILL_GOING:
                if at > m[2]:
                    m[2] = at
            elif at > m[1]:
                m[1] = at
        elif (e.outcome in _FINAL if stage == "notified" else stage in _ENDS) and at > m[1]:
            m[1] = at
    return {cid: (m[0], m[1], m[2]) for cid, m in acc.items()}


def dead_letters(entries: Iterable[Entry]) -> dict[str, float]:
    """Per correlation id, the time of the last ``dead_lettered`` entry of ``entries`` (the
    dead-letter index every store keeps beside the open one)."""
    found: dict[str, float] = {}
    for e in entries:
        if e.stage == "dead_lettered" and e.at > found.get(e.correlation_id, NONE):
            found[e.correlation_id] = e.at
    return found


def merge(
    m: Marks, opened: float | None, closed: float | None
) -> tuple[float | None, float | None]:
    """A click's ``(opened, closed)`` times after a batch's marks (None: not open / never
    settled). Every store applies this rule (the Redis script and the SQL upserts spell it in
    their own language; ``tests/journal/test_stores.py`` holds them to the same answers):

    - a settling entry closes the click for good, keeping the latest settle time;
    - a 202 *later* than that settle reopens it (the client retried a refused command under
      the same id), and so does an operator's ``resent`` (a dead letter sent again); an
      older one is a late batch from another process and changes nothing;
    - any other server entry opens a click that was never closed, at its first time.
    """
    first, settle, accept = m
    if settle != NONE and (closed is None or settle > closed):
        closed = settle
    if closed is not None:
        if accept != NONE and accept > closed:
            return accept, None
        return None, closed
    if first == NONE:
        return opened, None
    return (first if opened is None else min(opened, first)), None


class Process(NamedTuple):
    """One journal writer in the process table."""

    started_at_ms: float
    seen_at_ms: float
    heartbeat_ms: float
    """How often it says it is alive: silent for three of these, it is taken for dead."""


class Store(Protocol):
    dropped: int
    """Entries the store itself evicted before their age (its bound was reached)."""

    async def write(self, entries: Sequence[Entry]) -> None:
        """Keep ``entries`` (may raise: the writer counts the failure and drops the batch)."""

    async def read(self, correlation_id: str) -> list[Entry]:
        """The entries of ``correlation_id`` (any order; ``[]`` when unknown)."""
        ...

    async def recent(self, since_ms: float, limit: int) -> list[str]:
        """Correlation ids with an entry recorded at or after ``since_ms`` (Unix ms), the most
        recently active first, at most ``limit``."""
        ...

    async def open_clicks(self, before_ms: float, limit: int) -> tuple[list[str], int]:
        """Clicks still open (a server-side entry, no settling one) that opened at or before
        ``before_ms`` (Unix ms): at most ``limit`` ids, oldest first, and how many there are."""
        ...

    async def dead_lettered(self, limit: int) -> tuple[list[str], int]:
        """Clicks with a ``dead_lettered`` entry, kept as long as their entries (and at most
        ``DEFAULT_MAX_OPEN`` / the store's ``max_open``): at most ``limit`` ids, the oldest
        last dead letter first, and how many there are. A click resent since stays listed
        (its verdict says whether it still is dead-lettered)."""
        ...

    async def register(self, process: str, info: Process) -> None:
        """Put ``process`` in the process table (or refresh it)."""

    async def unregister(self, process: str) -> None:
        """Take ``process`` out of the table: it stopped cleanly, with nothing left unwritten."""

    async def processes(self) -> dict[str, Process]:
        """The process table: every journal writer that registered and did not stop cleanly."""
        ...

    async def ping(self) -> None:
        """A real round trip to the backend; raises when it is unreachable."""

    async def aclose(self) -> None: ...


@runtime_checkable
class SyncStore(Protocol):
    """A store cheap enough to be written in place, without the writer's queue."""

    def add(self, entry: Entry) -> None: ...


# The stores that keep bytes (SQLite, PostgreSQL, Redis) share one encoder and one decoder.
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Entry)
encode = _encoder.encode


def decode(data: bytes) -> Entry | None:
    """The entry in ``data``, or None when it does not decode (a foreign or damaged row)."""
    try:
        return _decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def decode_many(rows: list[bytes]) -> list[Entry]:
    return [e for e in map(decode, rows) if e is not None]
