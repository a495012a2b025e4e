"""Which browser stages the journal takes from a client: a tab's spans are its own word, so
they may only add to the clicks the edge saw this client send, within a share it cannot exceed.

For every distinct correlation id in a request the journal is read once (concurrently, at most
``OWNER_READS_AT_ONCE`` at a time, ``OWNER_CHECK_SECONDS`` in all): the click's owner is the
client id of its first edge entry (``accepted`` / ``refused``, the client id the middleware
verified), so a later command naming someone else's id does not make it the sender's. Then,
per stage, in order:

- ``unknown_click`` (no edge entry: an id this server never answered, or one the journal's
  writer has not written yet), ``other_client`` (the owner is another client, or none), or
  ``journal_unavailable`` (the read failed or timed out): dropped;
- ``duplicate``: the click already has it (``clicked``, ``session`` and ``settled`` once per
  click, ``http`` and ``received`` once per span): dropped, so a re-sent export counts once;
- ``per_click_cap``: the click has ``MAX_BROWSER_ENTRIES_PER_ID`` browser entries already;
- ``client_budget``: the client spent its ``CLIENT_STAGES_PER_MINUTE``;
- else taken, its time clamped into ``[now - MAX_PAST_MS, now + MAX_FUTURE_MS]`` and its
  duration to the window's width (``clamped`` when that changed it, else ``recorded``).

So a client creates no correlation id in the journal and evicts nobody's entries: it adds at
most a bounded number of entries to ids that exist and are its own.

Writer lag: the edge's entry reaches the store a batch later (about 50 ms). The browser
exports after the click settles (the plugin waits 2 s), so it is normally there; when an id
has no edge entry and this process's journal has entries queued, they are flushed and the id
read again (the edge and the ingest route are often one process). An edge entry still queued
in another process is missed: those stages are dropped as ``unknown_click``.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence

from clicktrace.journal import Entry, Journal
from clicktrace.journal._browser import BrowserStage
from clicktrace.journal._entry import BROWSER_STAGES
from clicktrace.journal._store import DEFAULT_MAX_AGE_SECONDS
from clicktrace.web._limits import RateLimit, RateLimiter

__all__ = [
    "CLIENT_STAGES_PER_MINUTE",
    "EDGE_STAGES",
    "MAX_BROWSER_ENTRIES_PER_ID",
    "MAX_CLICKS_PER_REQUEST",
    "MAX_FUTURE_MS",
    "MAX_PAST_MS",
    "MAX_REMEMBERED_CLICKS",
    "OWNER_CHECK_SECONDS",
    "OWNER_READS_AT_ONCE",
    "Admission",
    "Admitted",
]

# A click gives clicked, settled, session, one http per attempt and one received per
# notification (progress included): a dozen at most in practice.
MAX_BROWSER_ENTRIES_PER_ID = 16
# Browser entries one client may add per minute, whatever the ids (a token bucket: bursts up
# to the whole minute's share). A tab clicking once a second for a minute uses about 300.
CLIENT_STAGES_PER_MINUTE = 600
# Distinct correlation ids one request's spans may name (one journal read each); the plugin
# posts at most 64 spans a request, a few per click.
MAX_CLICKS_PER_REQUEST = 128
OWNER_READS_AT_ONCE = 8
# How long a request waits for the journal to say whose clicks they are; ids not answered by
# then are not journaled (the spans still go to the trace pipeline).
OWNER_CHECK_SECONDS = 2.0
# The window around the time of receipt a browser time is clamped to: a little ahead (clocks
# drift, and spans are exported after the click settles, so never much), and back as far as
# the journal keeps entries by default.
MAX_FUTURE_MS = 5_000.0
MAX_PAST_MS = DEFAULT_MAX_AGE_SECONDS * 1000.0

EDGE_STAGES = frozenset({"accepted", "refused"})
# Clicks whose admitted stages this process remembers: the store's view of a click lags its
# writer, and two exports close together must not both pass the cap or both be new.
MAX_REMEMBERED_CLICKS = 10_000
_ONCE_PER_CLICK = frozenset({"clicked", "session", "settled"})
_MAX_DURATION_MS = MAX_PAST_MS + MAX_FUTURE_MS

Key = tuple[str, str]  # (stage, span id), or (stage, "") for a once-per-click stage


def _key(stage: str, span_id: str | None) -> Key:
    return (stage, "") if stage in _ONCE_PER_CLICK else (stage, span_id or "")


class Admitted:
    """What :meth:`Admission.admit` took (``stages``, times clamped) and, by outcome, how many
    stages it took or dropped (``counts``)."""

    __slots__ = ("counts", "stages")

    def __init__(self) -> None:
        self.stages: list[BrowserStage] = []
        self.counts: dict[str, int] = {}

    def count(self, outcome: str, n: int = 1) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + n


def _owner(entries: Iterable[Entry]) -> tuple[bool, str | None]:
    """Whether the edge answered this id, and the client id of its first answer."""
    first: Entry | None = None
    for e in entries:
        if e.stage in EDGE_STAGES and (first is None or e.at < first.at):
            first = e
    return first is not None, None if first is None else first.client_id


class Admission:
    """The admission of one route: its clients' budgets and the clicks it took stages for.
    Not thread-safe: one per event loop, as the route uses it. ``per_minute`` is each
    client's budget, ``check_seconds`` how long the journal reads may take in all; ``clock``
    gives Unix seconds (the window), ``monotonic`` the budget's time."""

    def __init__(
        self,
        *,
        per_minute: int = CLIENT_STAGES_PER_MINUTE,
        check_seconds: float = OWNER_CHECK_SECONDS,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(per_minute, bool) or not isinstance(per_minute, int) or per_minute < 1:
            raise ValueError("per_minute must be a positive int")
        if not check_seconds > 0:
            raise ValueError("check_seconds must be positive")
        self._seconds = check_seconds
        self._budget = RateLimiter(
            RateLimit(per_second=per_minute / 60.0, burst=per_minute), clock=monotonic
        )
        self._clock = clock
        self._taken: OrderedDict[str, set[Key]] = OrderedDict()

    async def admit(
        self, journal: Journal, client_id: str, stages: Sequence[BrowserStage]
    ) -> Admitted:
        """The stages of ``stages`` that ``client_id`` may add to ``journal``. Never raises
        for a store that fails: its ids count as ``journal_unavailable``."""
        admitted = Admitted()
        by_id: dict[str, list[BrowserStage]] = {}
        for s in stages:
            by_id.setdefault(s.correlation_id, []).append(s)
        ids = list(by_id)
        for cid in ids[MAX_CLICKS_PER_REQUEST:]:
            admitted.count("too_many_clicks", len(by_id.pop(cid)))
        found = await _read(journal, list(by_id), self._seconds)
        now = self._clock() * 1000.0
        low, high = now - MAX_PAST_MS, now + MAX_FUTURE_MS
        for cid, mine in by_id.items():
            entries = found[cid]
            if entries is None:
                admitted.count("journal_unavailable", len(mine))
                continue
            answered, owner = _owner(entries)
            if not answered or owner != client_id:
                admitted.count("other_client" if answered else "unknown_click", len(mine))
                continue
            taken = self._taken.pop(cid, set())
            self._taken[cid] = taken  # most recently used last
            held = taken | {_key(e.stage, e.span_id) for e in entries if e.stage in BROWSER_STAGES}
            for s in mine:
                key = _key(s.stage, s.span_id)
                if key in held:
                    admitted.count("duplicate")
                elif len(held) >= MAX_BROWSER_ENTRIES_PER_ID:
                    admitted.count("per_click_cap")
                elif not self._budget.allow(client_id):
                    admitted.count("client_budget")
                else:
                    held.add(key)
                    taken.add(key)
                    at = min(max(s.at, low), high)
                    took = s.duration_ms
                    if took is not None:
                        took = min(took, _MAX_DURATION_MS)
                    if at != s.at or took != s.duration_ms:
                        admitted.count("clamped")
                        s = s._replace(at=at, duration_ms=took)
                    else:
                        admitted.count("recorded")
                    admitted.stages.append(s)
        while len(self._taken) > MAX_REMEMBERED_CLICKS:
            self._taken.popitem(last=False)
        return admitted


async def _read(journal: Journal, ids: list[str], seconds: float) -> dict[str, list[Entry] | None]:
    """Each id's entries (``None``: not read in time, or the read failed)."""
    found: dict[str, list[Entry] | None] = dict.fromkeys(ids)
    gate = asyncio.Semaphore(OWNER_READS_AT_ONCE)

    async def one(cid: str) -> None:
        async with gate:
            found[cid] = await journal.read(cid)

    async def all_of(some: list[str]) -> None:
        # return_exceptions: a failed read leaves its id unread, the others go on
        await asyncio.gather(*(one(cid) for cid in some), return_exceptions=True)

    try:
        async with asyncio.timeout(seconds):
            await all_of(ids)
            unanswered = [
                cid
                for cid, entries in found.items()
                if entries is not None and not _owner(entries)[0]
            ]
            if unanswered and journal.queued:
                await journal.flush()
                await all_of(unanswered)
    except TimeoutError:
        pass
    return found
