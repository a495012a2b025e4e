"""NATS JetStream (nats-py): one stream per topic, one durable pull consumer per group.

Native headers are NATS headers; the message id goes in ``Nats-Msg-Id`` too, so JetStream
drops a re-publish inside the stream's duplicate window. A consumer that dies leaves its
messages unacked and JetStream redelivers them after ``ack_wait`` seconds. That is short
(3 s: a restarted process resumes its dead predecessor's work promptly) because a live
consumer keeps extending it (``in_progress``) for every message of the batch in hand, however
long its handler takes; ``max_deliver`` stops a message that kills every consumer, and the base
dead-letters it on its last delivery. Dead letters go to the subject
``clicktrace_dlq.<topic>.<group>`` in the stream ``CLICKTRACE_DLQ``.

Bounded: topic streams keep at most ``max_msgs`` messages for at most ``max_age`` seconds
(limits retention: a group created later still reads what is there), and the dead-letter
stream keeps at most ``dead_letter_max_msgs`` per subject (so per topic and group) for at most
``dead_letter_max_age``. A stream made before these limits gets them on the next start.

A JetStream that lost its store (wiped, or a new server): a producer whose publish finds no
stream makes it again and publishes once more; a consumer checks its durable consumer whenever
a fetch comes back empty for a while or fails, and re-creates stream and consumer when they
are gone. Each says so in one log line and in ``bus.recoveries`` / ``bus.last_recovery``.
The client reconnects for as long as the bus runs (one log line per attempt); only the first
connection is bounded, by ``start_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import TracerProvider

from clicktrace._optional import require
from clicktrace.bus._base import DEFAULT_START_TIMEOUT, Bus, describe
from clicktrace.bus._types import Received, Subscription

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.js.client import JetStreamContext

__all__ = ["DLQ_STREAM", "NatsBus", "delivered", "dlq_subject", "durable_name", "stream_name"]

DLQ_STREAM = "CLICKTRACE_DLQ"
DLQ_PREFIX = "clicktrace_dlq"
DEFAULT_MAX_MSGS = 1_000_000
DEFAULT_MAX_AGE = 7 * 24 * 3600.0
DEFAULT_DEAD_LETTER_MAX_MSGS = 10_000
DEFAULT_DEAD_LETTER_MAX_AGE = 7 * 24 * 3600.0
RECONNECT_WAIT = 2.0  # seconds between reconnect attempts once started (nats-py's default)
CHECK_EVERY = 1.0  # seconds of empty fetches after which a consumer checks it still exists
log = logging.getLogger("clicktrace.bus")


def _safe(name: str) -> str:
    # Stream and durable names may not contain '.'; a hash keeps "a.b" and "a_b" apart.
    digest = hashlib.sha1(name.encode(), usedforsecurity=False).hexdigest()[:8]
    return f"{name.replace('.', '_')}_{digest}"


@functools.lru_cache(maxsize=1024)  # computed on every publish
def stream_name(topic: str) -> str:
    return f"CT_{_safe(topic)}"


def durable_name(group: str) -> str:
    return _safe(group)


def dlq_subject(topic: str, group: str) -> str:
    return f"{DLQ_PREFIX}.{topic}.{group}"


def delivered(msg: Msg) -> int:
    """How many times JetStream has delivered ``msg`` (1 the first time): the count in its
    ack subject, ``$JS.ACK.<stream>.<consumer>.<count>.…`` (or with a domain and an account
    hash before the stream), read without building the rest of ``msg.metadata`` (dates,
    sequences) on every message. Anything else is left to ``msg.metadata``."""
    tokens = (msg.reply or "").split(".")
    n = len(tokens)
    if (n == 9 or n >= 11) and tokens[0] == "$JS" and tokens[1] == "ACK":
        count = tokens[4 if n == 9 else 6]
        if count.isascii() and count.isdigit():
            return int(count) or 1
    return msg.metadata.num_delivered or 1


class _Delivery(Received):
    __slots__ = ("_msg",)

    def __init__(self, msg: Msg) -> None:
        super().__init__(msg.data, dict(msg.headers or {}), delivered(msg))
        self._msg = msg

    async def ack(self) -> None:
        await self._msg.ack()

    async def touch(self) -> None:
        await self._msg.in_progress()

    async def release(self) -> None:
        await self._msg.nak()


class NatsBus(Bus):
    """``NatsBus("nats://localhost:4222")``. ``ack_wait``: seconds before an unacked message
    is redelivered; ``duplicate_window``: seconds JetStream remembers message ids."""

    system = "nats"

    def __init__(
        self,
        url: str,
        *,
        tracer_provider: TracerProvider | None = None,
        batch: int = 100,
        fetch_timeout: float = 1.0,
        ack_wait: float = 3.0,
        duplicate_window: float = 120.0,
        max_msgs: int = DEFAULT_MAX_MSGS,
        max_age: float = DEFAULT_MAX_AGE,
        dead_letter_max_msgs: int = DEFAULT_DEAD_LETTER_MAX_MSGS,
        dead_letter_max_age: float = DEFAULT_DEAD_LETTER_MAX_AGE,
        start_timeout: float = DEFAULT_START_TIMEOUT,
    ) -> None:
        self._nats = require("nats", "nats")
        self._api = require("nats.js.api", "nats")
        self._errors = require("nats.js.errors", "nats")
        super().__init__(tracer_provider=tracer_provider, start_timeout=start_timeout)
        if batch < 1 or fetch_timeout <= 0 or ack_wait <= 0 or duplicate_window < 0:
            raise ValueError("batch, fetch_timeout and ack_wait must be positive")
        if min(max_msgs, dead_letter_max_msgs) < 1 or min(max_age, dead_letter_max_age) <= 0:
            raise ValueError("max_msgs, max_age and their dead-letter twins must be positive")
        self._url, self._batch, self._fetch_timeout = url, batch, fetch_timeout
        self._ack_wait, self._duplicate_window = ack_wait, duplicate_window
        self._limits = {"max_msgs": max_msgs, "max_age": max_age}
        self._dlq_limits = {
            "max_msgs_per_subject": dead_letter_max_msgs,
            "max_age": dead_letter_max_age,
        }
        self._close_grace = fetch_timeout + 1
        self._client: Client | None = None
        self._js_: JetStreamContext | None = None
        self._streams: set[str] = set()  # checked since the last (re)connection
        self._made: set[str] = set()  # streams and consumers this bus has made or found

    @property
    def _js(self) -> JetStreamContext:
        if self._js_ is None:
            raise RuntimeError("NatsBus is not connected")
        return self._js_

    async def _connect(self) -> None:
        # One attempt (start() retries and bounds them); once connected, reconnect for ever:
        # a broker restart must not end a long-running consumer.
        # (nats-py has no "one attempt" setting: 1 reconnect, no wait, is two quick tries.)
        client = await self._nats.connect(
            self._url,
            allow_reconnect=False,
            max_reconnect_attempts=1,
            reconnect_time_wait=0,
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
        )
        client.options.update(
            allow_reconnect=True, max_reconnect_attempts=-1, reconnect_time_wait=RECONNECT_WAIT
        )
        self._client = client
        self._js_ = client.jetstream()
        await self._stream(DLQ_STREAM, f"{DLQ_PREFIX}.>")

    async def _on_error(self, exc: Exception) -> None:
        if self._client is None:
            return  # still starting: start() logs each attempt
        # nats-py's default logs a traceback per failed reconnect attempt: one line instead.
        log.warning("clicktrace bus: nats: %s", describe(exc))

    async def _on_disconnected(self) -> None:
        if self._running:
            log.warning("clicktrace bus: nats connection lost; reconnecting")

    async def _on_reconnected(self) -> None:
        log.info("clicktrace bus: nats reconnected")
        self._streams.clear()  # a restarted server may have lost them: check again

    def _is_outage(self, exc: BaseException) -> bool:
        errors = self._nats.errors
        away = (
            errors.ConnectionClosedError,
            errors.ConnectionReconnectingError,
            errors.NoServersError,
            errors.NoRespondersError,
            errors.StaleConnectionError,
            self._errors.ServiceUnavailableError,
            self._errors.NoStreamResponseError,
        )
        return isinstance(exc, away) or super()._is_outage(exc)

    async def _disconnect(self) -> None:
        client, self._client, self._js_ = self._client, None, None
        self._streams.clear()
        if client is not None:
            await client.drain()

    async def _ping(self) -> None:
        if self._client is None:
            raise RuntimeError("NatsBus is not connected")
        await self._client.flush(timeout=2)  # PING, wait for the server's PONG

    async def _stream(self, name: str, subject: str) -> None:
        """Make sure stream ``name`` exists with our limits (once per connection)."""
        if name in self._streams:
            return
        limits = self._dlq_limits if name == DLQ_STREAM else self._limits
        config = self._api.StreamConfig(
            name=name, subjects=[subject], duplicate_window=self._duplicate_window, **limits
        )
        try:
            info = await self._js.stream_info(name)
        except self._errors.NotFoundError:
            await self._js.add_stream(config)
            if name in self._made:
                self._recovered(f"JetStream stream {name!r}")
        else:
            have = info.config
            if any(getattr(have, key) != value for key, value in limits.items()):
                try:  # made by an older version, without limits: bound it now
                    await self._js.update_stream(config)
                except self._errors.APIError as exc:
                    log.warning("clicktrace bus: nats stream %s keeps its limits (%s)", name, exc)
        self._made.add(name)
        self._streams.add(name)

    async def _ensure_consumer(self, sub: Subscription) -> None:
        """Re-create the group's stream and durable consumer if JetStream has lost them."""
        stream, durable = stream_name(sub.topic), durable_name(sub.group)
        try:
            await self._js.consumer_info(stream, durable)
        except self._errors.NotFoundError:
            known = sub.consumer in self._made  # made before, so JetStream forgot it
            self._streams.discard(stream)
            await self._prepare(sub)
            if known:
                self._recovered(f"JetStream consumer {durable!r} of stream {stream!r}")

    async def _prepare(self, sub: Subscription) -> None:
        self._made.add(sub.consumer)
        await self._stream(stream_name(sub.topic), sub.topic)
        await self._js.add_consumer(
            stream_name(sub.topic),
            self._api.ConsumerConfig(
                durable_name=durable_name(sub.group),
                ack_wait=self._ack_wait,
                # One more than the base's attempts: that last delivery is where it gives up
                # on a message whose consumers keep dying.
                max_deliver=sub.max_attempts + 1,
                filter_subject=sub.topic,
                max_ack_pending=max(1000, self._batch * 10),
            ),
        )

    async def _send(
        self, topic: str, body: bytes, headers: dict[str, str], message_id: str
    ) -> None:
        name = stream_name(topic)
        if name not in self._streams:  # checked once per connection
            await self._stream(name, topic)
        await self._publish(name, topic, body, {**headers, "Nats-Msg-Id": message_id})

    async def _publish(
        self, stream: str, subject: str, body: bytes, headers: dict[str, str]
    ) -> None:
        try:
            await self._js.publish(subject, body, headers=headers)
        except self._errors.NoStreamResponseError:
            # No stream listens on the subject: JetStream lost it. Make it, publish again.
            self._streams.discard(stream)
            await self._stream(stream, subject if stream != DLQ_STREAM else f"{DLQ_PREFIX}.>")
            await self._js.publish(subject, body, headers=headers)

    async def _listen(self, sub: Subscription) -> None:
        await self._ensure_consumer(sub)  # again on every (re)start: it may have been lost
        psub = await self._js.pull_subscribe_bind(
            durable=durable_name(sub.group), stream=stream_name(sub.topic)
        )
        checked = time.monotonic()
        # The batch being handled, kept alive by one task for as long as we listen (not one
        # task per batch: a quiet topic fetches one message at a time).
        in_hand: list[Msg] = []
        keepalive = asyncio.create_task(self._keep_alive(in_hand))
        try:
            while self._consuming:
                try:
                    msgs = await psub.fetch(self._batch, timeout=self._fetch_timeout)
                except TimeoutError:  # nats-py raises its own and asyncio's: both subclass it
                    # Nothing came: quiet, or the consumer is gone (a wiped store). Look now
                    # and then; a gone one makes us return, and _run calls us again at once.
                    if time.monotonic() - checked > CHECK_EVERY:
                        checked = time.monotonic()
                        if not await self._consumer_exists(sub):
                            return
                    continue
                except self._nats.errors.Error:
                    if not await self._consumer_exists(sub):
                        return
                    raise
                in_hand[:] = msgs
                try:
                    while in_hand:
                        await self._deliver(sub, _Delivery(in_hand[0]))
                        del in_hand[0]
                finally:
                    in_hand.clear()
        finally:
            keepalive.cancel()
            await asyncio.gather(keepalive, return_exceptions=True)
            with contextlib.suppress(Exception):  # the link may be down
                await psub.unsubscribe()

    async def _consumer_exists(self, sub: Subscription) -> bool:
        try:
            await self._js.consumer_info(stream_name(sub.topic), durable_name(sub.group))
        except self._errors.NotFoundError:
            return False
        return True

    async def _keep_alive(self, in_hand: list[Msg]) -> None:
        """Tell JetStream the batch in hand is still being worked on, every third of
        ``ack_wait``, so only a dead consumer's messages are redelivered."""
        while True:
            await asyncio.sleep(self._ack_wait / 3)
            for msg in list(in_hand):
                with contextlib.suppress(Exception):  # acked meanwhile, or the link dropped
                    await msg.in_progress()

    async def _send_dead_letter(
        self, sub: Subscription, body: bytes, headers: dict[str, str]
    ) -> None:
        await self._publish(DLQ_STREAM, dlq_subject(sub.topic, sub.group), body, headers)

    async def _read_dead_letters(
        self, topic: str, group: str, limit: int
    ) -> list[tuple[bytes, Mapping[str, str]]]:
        api = self._api
        psub = await self._js.pull_subscribe(
            dlq_subject(topic, group),
            stream=DLQ_STREAM,
            config=api.ConsumerConfig(ack_policy=api.AckPolicy.NONE, inactive_threshold=5.0),
        )
        out: list[tuple[bytes, Mapping[str, str]]] = []
        try:
            while len(out) < limit:
                try:
                    msgs: list[Any] = await psub.fetch(limit - len(out), timeout=0.5)
                except TimeoutError:
                    break
                out.extend((m.data, dict(m.headers or {})) for m in msgs)
        finally:
            await psub.unsubscribe()
        return out
