"""Sending a dead-lettered command again: found where the broker keeps it, published to its
topic once more as a new attempt of the same correlation id, journaled.

The message is the broker's own dead letter (every bus keeps them, bounded: Redis and NATS
streams, a RabbitMQ queue, the memory bus's ring; ``Bus.dead_letters``), so nothing beside
the broker keeps a copy. The journal says where to look: the delivery that was dead-lettered
names its topic and group.

It goes out as a new message of the same command: same correlation id, client, trace and
payload; a message id of its own, derived from the dead letter's and the attempt's number;
no deadline (it has passed, and the operator decided the command is still wanted). A new id
because a projection may have settled the dead letter's own id with the rejection its tab was
told (so that a late copy of the original is never applied after "rejected": the demo does,
``settle_dead_letter``); derived, so two operators resending the same attempt at once send
the same message, which the consumer's claims (``dedupe``, a claim on the message id) apply
once. It goes to the group that gave up on it only
(``publish(..., group=)``): the topic's other groups applied the original and ack it
unhandled. The ``resent`` entry (attempt: this send's number, the first send being 1) reopens
the click: its verdict then follows the new delivery, and the tab that clicked, if still open,
hears the outcome the handler sends.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from typing import TextIO

import msgspec

from clicktrace.bus import Bus, create_bus
from clicktrace.bus._base import describe
from clicktrace.envelope import Envelope
from clicktrace.ids import parse_id
from clicktrace.journal import Journal, Thresholds, record, use
from clicktrace.journal._entry import Entry
from clicktrace.journal._store import Store
from clicktrace.journal._verdict import ending, ordered

__all__ = [
    "MAX_DEAD_LETTERS_READ",
    "NotResendable",
    "Resent",
    "again",
    "resend",
    "resend_command",
    "resend_id",
    "resendable",
]

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
MAX_DEAD_LETTERS_READ = 10_000
"""Dead letters read from one topic and group to find the click's (the brokers keep at most
10,000 each by default)."""


class NotResendable(Exception):
    """Why a click cannot be sent again: ``code`` (``not_found``, ``not_dead_lettered``,
    ``dead_letter_gone``) and a message for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Resent:
    correlation_id: str
    attempt: int
    """This send's number: the first send was 1, the first resend is 2."""
    topic: str
    group: str


def resendable(entries: list[Entry]) -> bool:
    """Whether the click of ``entries`` can be sent again: its server side ended in a dead
    letter (whatever its trace says: a broken trace hides it in the verdict's text)."""
    end = ending(entries)
    return end is not None and end[0] == "dead_lettered"


def _where(entries: list[Entry]) -> list[tuple[str, str]]:
    """Where the last dead letter may be, likeliest first: the topic and group of the
    ``delivered`` of the same consumer span (both are journaled inside it), then of every
    delivery before it, the latest first (without spans, any group of the topic may be it)."""
    server = [e for _, e in ordered(entries)]
    last_dead = max((i for i, e in enumerate(server) if e.stage == "dead_lettered"), default=-1)
    span = server[last_dead].span_id if last_dead >= 0 else None
    before = [e for e in server[: max(0, last_dead)] if e.stage == "delivered"]
    same = [e for e in before if span is not None and e.span_id == span]
    found: list[tuple[str, str]] = []
    for e in [*same, *reversed(before)]:
        if e.detail and " group " in e.detail:
            topic, _, group = e.detail.partition(" group ")
            if (topic, group) not in found:
                found.append((topic, group))
    return found


def _trace(envelope: Envelope) -> tuple[str | None, bool | None]:
    tp = envelope.metadata.extract().traceparent
    if tp is None:
        return None, None
    return tp.trace_id.to_bytes(16, "big").hex(), tp.sampled


def resend_id(message_id: str, attempt: int) -> str:
    """The message id of send number ``attempt`` of the message ``message_id``: a ULID with
    the original's time, the rest from a hash of both (the same for everyone who asks)."""
    digest = int.from_bytes(hashlib.sha256(f"{message_id}:{attempt}".encode()).digest()[:10])
    rest = "".join(_CROCKFORD[(digest >> shift) & 31] for shift in range(75, -1, -5))
    head = message_id[:10] if parse_id(message_id) else "0" * 10
    return head + rest


def again(envelope: Envelope, attempt: int) -> Envelope:
    """``envelope`` as send number ``attempt``: its own message id (:func:`resend_id`), no
    deadline; everything else (correlation id, client, trace, payload) as it was."""
    meta = envelope.metadata
    fresh = msgspec.structs.replace(
        meta, message_id=resend_id(meta.message_id, attempt), deadline=None
    )
    return msgspec.structs.replace(envelope, metadata=fresh)


async def resend(
    store: Store,
    bus: Bus,
    correlation_id: str,
    *,
    thresholds: Thresholds | None = None,
) -> Resent:
    """Send ``correlation_id``'s dead-lettered command again through ``bus``. Raises
    :class:`NotResendable` when it cannot be, and the broker's or the store's error when
    either does not answer."""
    entries = await store.read(correlation_id)
    if not entries:
        raise NotResendable("not_found", "no journal for this correlation id")
    if not resendable(entries):
        raise NotResendable("not_dead_lettered", "this click is not dead-lettered")
    where = _where(entries)
    if not where:
        raise NotResendable("dead_letter_gone", "the journal does not say where it was delivered")
    await bus.ping()  # a bus that is not running or not reachable: its error, not a 409
    envelope, topic, group = None, "", ""
    for topic, group in where:
        for letter in await bus.dead_letters(topic, group, MAX_DEAD_LETTERS_READ):
            found = letter.envelope
            if found is not None and found.metadata.correlation_id == correlation_id:
                envelope = found  # the last one: dead letters come oldest first
        if envelope is not None:
            break
    if envelope is None:
        raise NotResendable("dead_letter_gone", "the broker no longer keeps this dead letter")
    attempt = 2 + sum(e.stage == "resent" for e in entries)
    envelope = again(envelope, attempt)
    trace_id, sampled = _trace(envelope)
    # Before the publish: a consumer may journal its delivery before publish() returns.
    record(
        "resent",
        correlation_id=correlation_id,
        client_id=envelope.metadata.client_id,
        attempt=attempt,
        detail=f"{topic} group {group}",
        trace_id=trace_id,
        sampled=sampled,
    )
    await bus.publish(topic, envelope, group=group)  # the group that gave up, no other
    return Resent(correlation_id, attempt, topic, group)


async def resend_command(
    store: Store, raw: str, bus_url: str, timeout: float, thresholds: Thresholds, out: TextIO
) -> int:
    """``python -m clicktrace resend <id>``: :func:`resend` on the bus at ``bus_url``, the
    ``resent`` entry journaled into ``store``. 0 when sent, 1 when it cannot be (one line
    saying why), 2 when the bus cannot be reached (one line on stderr)."""
    cid = parse_id(raw)
    if cid is None:
        print(f"no journal for {raw[:64]!r}", file=out)
        return 1
    journal = Journal(store)
    previous = use(journal)
    bus = create_bus(bus_url, start_timeout=timeout)
    try:
        try:
            await bus.start()
        except Exception as exc:
            print(
                f"python -m clicktrace: error: the bus did not answer ({describe(exc)})",
                file=sys.stderr,
            )
            return 2
        try:
            done = await resend(store, bus, cid, thresholds=thresholds)
        except NotResendable as exc:
            print(f"{cid} not sent: {exc.message} ({exc.code})", file=out)
            return 1
        except Exception as exc:  # the store or the bus stopped answering
            print(f"python -m clicktrace: error: not sent ({describe(exc)})", file=sys.stderr)
            return 2
        print(f"{cid} sent again to {done.topic} (attempt {done.attempt})", file=out)
        return 0
    finally:
        await bus.close()
        use(previous)
        await journal.aclose()  # the resent entry written; the store closed (again: harmless)
