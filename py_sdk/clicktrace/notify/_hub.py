"""The hub: a node's socket connections, and each one's exactly-once, in-order delivery.

:class:`Hub` holds the connections on this node by client id (a cap per client, the catch-up
sweep, the dispatch of live frames to a client's connections). Each connection's
:class:`SocketDelivery` remembers the last ``seq`` it sent. Live frames reach it through
:meth:`Hub.dispatch` (from the local notifier, a python-socketio manager, or Redis pub/sub);
frames it already sent are dropped, and a gap (frames published out of order by two processes,
or published while the socket was connecting) is filled from the replay buffer. While a
connection replays what it missed, live frames are held, then offered in order, so replay and
live traffic never interleave or repeat. Seqs are compared only within one ``epoch`` (the
buffer's name for a numbering): a client that presents another epoch than the buffer's gets a
resync naming the current one at seq 0, then everything that numbering still holds; a live
frame of a new epoch (the buffer lost its counter meanwhile) restarts the comparison at 0.

Before that, admission (both transports, sizes in :class:`Limits`): a socket costs memory from
the moment it opens, but only a valid token makes it a client's. Until then it is counted
against its peer address (a :class:`PeerCap` with a deadline) and has ``hello_timeout_seconds``
to authenticate, so no address can hold more than ``max_pending_per_peer`` sockets that never
present a token; once authenticated it counts against its address in another
:class:`PeerCap`.

Between nodes, the WebSocket transport fans frames out over Redis pub/sub (:class:`RedisFanout`;
Socket.IO uses python-socketio's managers): every node subscribes to one channel, a message is
``{"client_id", "frame"}`` JSON, and publishing is write-only, so worker processes use
:func:`publish_frame` with no listener. The listener reconnects with capped backoff and, once
subscribed again, asks every local connection to catch up from the replay buffer, since frames
published during the outage never arrived live.

Topics: a connection may watch topics (:meth:`Hub.watch`, when the app's ``may_watch`` lets
its client). Each watch is a :class:`SocketDelivery` of its own over the topic's numbering in
the same buffer (under :func:`~clicktrace.notify._frames.topic_key`), so an update is replayed,
held, deduplicated and resynced exactly as an outcome is, and :meth:`Hub.dispatch_topic`
offers a live one to every watcher on this node. A watch never creates a numbering: a topic
nothing was published to answers a resync to seq 0 without an epoch, so watching made-up
names costs no memory or Redis keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, cast

import msgspec

from clicktrace.ids import parse_id
from clicktrace.journal._record import record
from clicktrace.notify._frames import (
    Error,
    Frame,
    Notification,
    Refused,
    Resync,
    Stamped,
    Update,
    topic_key,
    topic_ok,
)
from clicktrace.notify._replay import ReplayBuffer, connect_redis
from clicktrace.notify._session import DEFAULT_SESSION_RATE
from clicktrace.propagation._inject_extract import extract_trace
from clicktrace.protocol import (
    FORBIDDEN_TOPIC,
    INVALID_TOPIC,
    MAX_TOPIC_LENGTH,
    TOO_MANY_TOPICS,
    TRACEPARENT_HEADER,
    UNAVAILABLE,
)
from clicktrace.web._limits import PeerOf, RateLimit, peer_address

HELLO_TIMEOUT_SECONDS = 10.0  # both transports: the socket must present its token by then
MAX_PENDING_PER_PEER = 32
MAX_CONNECTIONS_PER_CLIENT = 16
# Authenticated sockets one peer address may hold on a node. A tab holds one; an office or a
# carrier NAT puts many tabs behind one address, hence far above one person's tabs. Sessions
# are cheap to mint (1/s per address, burst 30), so without this one address held 1,424
# sockets (16 per client id) within a minute. Behind a proxy, set ``peer_of``.
MAX_CONNECTIONS_PER_PEER = 256
MAX_TOPICS_PER_SOCKET = 32
MAX_HELD_FRAMES = 1024
MAX_MESSAGE_BYTES = 1 << 20
_BACKOFF_START, _BACKOFF_MAX = 0.1, 5.0

Send = Callable[[Frame], Awaitable[None]]
MayWatch = Callable[[str, str, str | None], Awaitable[bool] | bool]
"""``may_watch(client_id, topic, user)``: whether that client may watch that topic; ``user``
is the one its token is bound to (``Notifier(user_of=...)``), else ``None``."""
Expire = Callable[[Hashable], Awaitable[None]]
_log = logging.getLogger("clicktrace.notify")


def _positive_int(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int")


@dataclass(frozen=True, kw_only=True)
class Limits:
    """What one address or one client may cost a node: ``Notifier(limits=...)``.

    ``hello_timeout_seconds``: a socket must present its token by then.
    ``max_connections_per_client``: sockets per client id on a node (a stolen or leaked token
    must not pin unbounded sockets). ``max_connections_per_peer``: authenticated sockets per
    ``peer_of`` address on a node. ``max_pending_per_peer``: sockets awaiting their token per
    address. ``session_rate``: ``POST <prefix>/session`` per address (``None``: unlimited).
    ``peer_of``: the address of a request (see :mod:`clicktrace.web._limits`; behind a proxy,
    the proxy's header). ``max_topics_per_socket``: topics one socket may watch at once.
    """

    hello_timeout_seconds: float = HELLO_TIMEOUT_SECONDS
    max_connections_per_client: int = MAX_CONNECTIONS_PER_CLIENT
    max_connections_per_peer: int = MAX_CONNECTIONS_PER_PEER
    max_pending_per_peer: int = MAX_PENDING_PER_PEER
    session_rate: RateLimit | None = DEFAULT_SESSION_RATE
    peer_of: PeerOf = peer_address
    max_topics_per_socket: int = MAX_TOPICS_PER_SOCKET

    def __post_init__(self) -> None:
        if not self.hello_timeout_seconds > 0:
            raise ValueError("hello_timeout_seconds must be positive")
        _positive_int(self.max_connections_per_client, "max_connections_per_client")
        _positive_int(self.max_connections_per_peer, "max_connections_per_peer")
        _positive_int(self.max_pending_per_peer, "max_pending_per_peer")
        _positive_int(self.max_topics_per_socket, "max_topics_per_socket")


class PeerCap:
    """Counts sockets per peer address and refuses one past ``max_per_peer``; with a
    ``timeout``, a socket still counted that long after :meth:`admit` goes to ``on_expire``
    (which closes it).

    Both transports hold two: one for sockets awaiting their token (with the hello deadline),
    one for authenticated sockets (the per-client cap is the hub's; this one bounds what
    minting many client ids buys). Not thread-safe: one per transport, on its event loop.
    """

    def __init__(
        self,
        max_per_peer: int,
        *,
        timeout: float | None = None,
        on_expire: Expire | None = None,
    ) -> None:
        _positive_int(max_per_peer, "max_per_peer")
        if timeout is not None and not timeout > 0:
            raise ValueError("timeout must be positive or None")
        self._max = max_per_peer
        self._timeout = timeout
        self._on_expire = on_expire
        self._peers: dict[Hashable, str] = {}
        self._counts: dict[str, int] = {}
        self._timers: dict[Hashable, asyncio.TimerHandle] = {}
        self._expiring: set[asyncio.Task[None]] = set()

    def admit(self, key: Hashable, peer: str) -> bool:
        """Count ``key`` against ``peer``; ``False`` (not counted) when the peer is at the cap."""
        if key in self._peers:
            return True
        if self._counts.get(peer, 0) >= self._max:
            return False
        self._peers[key] = peer
        self._counts[peer] = self._counts.get(peer, 0) + 1
        if self._timeout is not None and self._on_expire is not None:
            loop = asyncio.get_running_loop()
            self._timers[key] = loop.call_later(self._timeout, self._expire, key)
        return True

    def release(self, key: Hashable) -> None:
        """``key`` authenticated, is gone or was refused after all: it no longer counts.
        Idempotent."""
        peer = self._peers.pop(key, None)
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        if peer is not None:
            left = self._counts[peer] - 1
            if left:
                self._counts[peer] = left
            else:
                del self._counts[peer]

    def __contains__(self, key: Hashable) -> bool:
        return key in self._peers

    def count(self, peer: str) -> int:
        return self._counts.get(peer, 0)

    def _expire(self, key: Hashable) -> None:
        self._timers.pop(key, None)
        if key not in self._peers or self._on_expire is None:
            return
        self.release(key)
        task = asyncio.ensure_future(self._on_expire(key))
        self._expiring.add(task)
        task.add_done_callback(self._expiring.discard)

    async def aclose(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for task in list(self._expiring):
            task.cancel()
        await asyncio.gather(*self._expiring, return_exceptions=True)


def journal_frame(
    stage: str, client_id: str, frame: Notification, detail: str, at: float | None = None
) -> None:
    """A journal entry for ``frame``, in the trace its traceparent names (the socket side
    runs outside the notifying click's context), with its sampled flag; ``at`` (Unix ms) is
    when the frame was handed to the socket(s): the tab may receive it before the entry is
    written, and the verdict orders the tab's ``received`` after it."""
    traceparent = frame.traceparent
    tp = (
        None
        if traceparent is None
        else extract_trace({TRACEPARENT_HEADER: traceparent}).traceparent
    )
    record(
        stage,
        correlation_id=frame.correlation_id,
        client_id=client_id,
        detail=detail,
        at=at,
        outcome=frame.status,
        trace_id=None if tp is None else f"{tp.trace_id:032x}",
        span_id=None if tp is None else f"{tp.span_id:016x}",
        sampled=None if tp is None else tp.sampled,
    )


class SocketDelivery:
    def __init__(
        self,
        client_id: str,
        send: Send,
        buffer: ReplayBuffer,
        last_seq: int,
        epoch: str | None = None,
        topic: str | None = None,
    ) -> None:
        self.client_id = client_id
        """Whose numbering this follows: a client id, or a topic's :func:`topic_key`."""
        self.topic = topic
        self.last_seq = last_seq
        self.epoch = epoch
        """The numbering ``last_seq`` belongs to (``None``: a client that sends none)."""
        self.send = send
        self._buffer = buffer
        self._held: list[Notification] | None = []
        self._lock = asyncio.Lock()

    async def resume(self) -> None:
        """Replay what the client missed since its ``last_seq``, then go live."""
        async with self._lock:
            await self._catch_up()
            held, self._held = self._held or [], None
            overflowed = len(held) >= MAX_HELD_FRAMES
            for frame in held:
                await self._offer(frame)
            if overflowed:
                await self._catch_up()  # frames past the cap were not held: fetch them

    async def offer(self, frame: Notification) -> None:
        if self._held is not None:
            # Bounded: a replay stuck on a slow buffer must not grow memory without limit.
            if len(self._held) < MAX_HELD_FRAMES:
                self._held.append(frame)
            return
        async with self._lock:
            await self._offer(frame)

    async def refresh(self) -> None:
        """Catch up from the buffer (after live frames may have been lost, e.g. an outage)."""
        if self._held is not None:
            return  # resume() is about to catch up anyway
        async with self._lock:
            await self._catch_up()

    async def _offer(self, frame: Notification) -> None:
        seq, epoch = frame.seq, frame.epoch
        if epoch is not None and epoch != self.epoch:
            if self.epoch is not None:
                self.last_seq = 0  # a new numbering: its seqs start again at 1
            self.epoch = epoch
        if seq is None or seq <= self.last_seq:
            return
        if seq > self.last_seq + 1:
            await self._catch_up()
            if seq <= self.last_seq:
                return
        await self.send(frame)
        self.last_seq = seq

    async def _catch_up(self) -> None:
        if self.topic is not None and not await self._buffer.current(self.client_id):
            # A topic with no numbering (never published, or forgotten): nothing to replay,
            # and asking for its epoch would make one for any name a tab sends.
            if self.last_seq or self.epoch is not None:
                await self.send(Resync(seq=0, topic=self.topic))
                self.last_seq, self.epoch = 0, None
            return
        missed = await self._buffer.since(self.client_id, self.last_seq, self.epoch)
        if missed is None:
            epoch = await self._buffer.epoch(self.client_id)
            fresh = None
            if epoch != self.epoch and self.epoch is not None:
                # Another numbering (the buffer restarted): resync to its start and replay all
                # of it, so an outcome numbered before this hello was read is not skipped.
                fresh = await self._buffer.since(self.client_id, 0, epoch)
            current = 0 if fresh is not None else await self._buffer.current(self.client_id)
            await self.send(Resync(seq=current, epoch=epoch, topic=self.topic))
            self.last_seq, self.epoch = current, epoch
            missed = fresh or []
        for frame in missed:
            seq = frame.seq or 0
            if seq > self.last_seq:
                handed = time.time() * 1000.0
                await self.send(frame)
                self.last_seq = seq
                if frame.epoch is not None:
                    self.epoch = frame.epoch
                if self.topic is None:
                    journal_frame("replayed", self.client_id, frame, f"seq {seq}", handed)


class TooManyConnections(Exception):
    """A client already has ``max_per_client`` connections on this node."""


class Hub:
    """The connections on this node, by client id.

    ``sweep_seconds``: when live frames travel over pub/sub (at most once: a message is lost
    while a subscriber reconnects, and python-socketio's managers subscribe in the background
    after the first connection), every connection also catches up from the buffer this often,
    so a lost frame is late, never missing. ``None`` turns the sweep off.
    """

    def __init__(
        self,
        buffer: ReplayBuffer,
        *,
        sweep_seconds: float | None = None,
        max_per_client: int = MAX_CONNECTIONS_PER_CLIENT,
        may_watch: MayWatch | None = None,
        max_topics: int = MAX_TOPICS_PER_SOCKET,
    ) -> None:
        if sweep_seconds is not None and not sweep_seconds > 0:
            raise ValueError("sweep_seconds must be positive or None")
        _positive_int(max_per_client, "max_per_client")
        _positive_int(max_topics, "max_topics")
        if may_watch is not None and not callable(may_watch):
            raise TypeError("may_watch must be a callable (client_id, topic, user) -> bool")
        self.buffer = buffer
        self._max_per_client = max_per_client
        self._may_watch = may_watch
        self._max_topics = max_topics
        self._clients: dict[str, dict[Hashable, SocketDelivery]] = {}
        self._keys: dict[Hashable, str] = {}
        # topic -> socket key -> that socket's delivery of the topic; and the reverse.
        self._topics: dict[str, dict[Hashable, SocketDelivery]] = {}
        self._watching: dict[Hashable, dict[str, SocketDelivery]] = {}
        self._users: dict[Hashable, str] = {}  # the user a connection's token is bound to
        self._sweep_seconds = sweep_seconds
        self._sweeper: asyncio.Task[None] | None = None

    def attach(
        self,
        key: Hashable,
        client_id: str,
        send: Send,
        last_seq: int,
        epoch: str | None = None,
        *,
        user: str | None = None,
    ) -> SocketDelivery:
        """Register a verified connection; it holds live frames until :meth:`SocketDelivery.resume`.

        Raises :class:`TooManyConnections` when the client is at its cap on this node (one
        stolen or leaked token must not let anyone pin unbounded sockets)."""
        self.detach(key)
        if len(self._clients.get(client_id, ())) >= self._max_per_client:
            raise TooManyConnections(client_id)
        if self._sweep_seconds is not None and self._sweeper is None:
            self._sweeper = asyncio.create_task(
                self._sweep(self._sweep_seconds), name="clicktrace-notify-sweep"
            )
        delivery = SocketDelivery(client_id, send, self.buffer, last_seq, epoch)
        self._clients.setdefault(client_id, {})[key] = delivery
        self._keys[key] = client_id
        if user is not None:
            self._users[key] = user
        return delivery

    def get(self, key: Hashable) -> SocketDelivery | None:
        client_id = self._keys.get(key)
        return None if client_id is None else self._clients[client_id].get(key)

    def detach(self, key: Hashable) -> None:
        for topic in list(self._watching.get(key, ())):
            self.unwatch(key, topic)
        self._users.pop(key, None)
        client_id = self._keys.pop(key, None)
        if client_id is None:
            return
        conns = self._clients.get(client_id, {})
        conns.pop(key, None)
        if not conns:
            self._clients.pop(client_id, None)

    async def watch(self, key: Hashable, topic: str, last_seq: int, epoch: str | None) -> None:
        """Send connection ``key`` the updates of ``topic`` after ``last_seq`` (of numbering
        ``epoch``), then live ones; a refusal goes to the socket as a :class:`Refused` frame.
        Watching a topic again resumes it from the new position."""
        client_id = self._keys.get(key)
        conn = self.get(key)
        if client_id is None or conn is None:
            return
        code = await self._refusal(key, client_id, topic)
        if self.get(key) is not conn:
            return  # it left while the app's hook ran
        if code is not None:
            self.unwatch(key, topic)
            await conn.send(_refused(topic, code))
            return
        self.unwatch(key, topic)
        delivery = SocketDelivery(topic_key(topic), conn.send, self.buffer, last_seq, epoch, topic)
        self._topics.setdefault(topic, {})[key] = delivery
        self._watching.setdefault(key, {})[topic] = delivery
        try:
            await delivery.resume()
        except asyncio.CancelledError:
            raise
        except Exception:
            _log.warning("clicktrace: replaying a topic failed; watch refused", exc_info=True)
            self.unwatch(key, topic)
            await conn.send(_refused(topic, UNAVAILABLE))

    async def _refusal(self, key: Hashable, client_id: str, topic: str) -> str | None:
        if not topic_ok(topic):
            return INVALID_TOPIC
        watching = self._watching.get(key, {})
        if topic not in watching and len(watching) >= self._max_topics:
            return TOO_MANY_TOPICS
        if self._may_watch is None:
            return None
        try:
            allowed = self._may_watch(client_id, topic, self._users.get(key))
            if inspect.isawaitable(allowed):
                allowed = await allowed
        except asyncio.CancelledError:
            raise
        except Exception:
            _log.warning("clicktrace: may_watch failed; refusing the watch", exc_info=True)
            return UNAVAILABLE
        return None if allowed is True else FORBIDDEN_TOPIC

    def unwatch(self, key: Hashable, topic: str) -> None:
        """Stop sending ``topic`` to connection ``key``. Idempotent."""
        watching = self._watching.get(key)
        if watching is None or watching.pop(topic, None) is None:
            return
        if not watching:
            del self._watching[key]
        watchers = self._topics.get(topic, {})
        watchers.pop(key, None)
        if not watchers:
            self._topics.pop(topic, None)

    def watchers(self, topic: str) -> int:
        return len(self._topics.get(topic, ()))

    def connections(self, client_id: str) -> int:
        return len(self._clients.get(client_id, ()))

    def __len__(self) -> int:
        return len(self._keys)

    async def _sweep(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            await self.refresh_all()

    async def aclose(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
            self._sweeper = None

    async def refresh_all(self) -> None:
        for conns in [*self._clients.values(), *self._topics.values()]:
            for delivery in list(conns.values()):
                try:
                    await delivery.refresh()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    _log.warning("clicktrace: catching a socket up failed", exc_info=True)

    async def dispatch(self, client_id: str, frame: Notification) -> None:
        """Offer a live frame to every connection of ``client_id`` on this node."""
        conns = self._clients.get(client_id)
        if not conns:
            return
        sockets = 0
        handed = time.time() * 1000.0  # before the sends: a tab may receive it first
        for delivery in list(conns.values()):
            try:
                await delivery.offer(frame)
                sockets += 1
            except asyncio.CancelledError:
                raise
            except Exception:
                # One broken socket must not starve the client's other tabs or other clients.
                _log.warning("clicktrace: delivery to a socket failed", exc_info=True)
        journal_frame("pushed", client_id, frame, f"{sockets} socket{'s' * (sockets != 1)}", handed)

    async def dispatch_topic(self, topic: str, frame: Notification) -> None:
        """Offer a live update to every connection watching ``topic`` on this node."""
        for delivery in list(self._topics.get(topic, {}).values()):
            try:
                await delivery.offer(frame)
            except asyncio.CancelledError:
                raise
            except Exception:
                _log.warning("clicktrace: delivery to a socket failed", exc_info=True)

    async def route(self, client_id: str, frame: Notification) -> None:
        """A live frame from the local notifier or another node: an update to its topic's
        watchers, anything else to ``client_id``'s connections."""
        if isinstance(frame, Update):
            await self.dispatch_topic(frame.topic, frame)
        else:
            await self.dispatch(client_id, frame)


_REFUSALS: dict[str, str] = {
    INVALID_TOPIC: "not a topic name",
    TOO_MANY_TOPICS: "this socket watches too many topics",
    FORBIDDEN_TOPIC: "this client may not watch it",
    UNAVAILABLE: "cannot serve it now; try again",
}


def _refused(topic: str, code: str) -> Refused:
    """The answer to a refused watch; its message names the topic (cut, escaped: a tab may
    show it)."""
    message = f"watching {topic[:MAX_TOPIC_LENGTH]!a} refused: {_REFUSALS[code]}"
    return Refused(topic=topic, error=Error(code=code, message=message))


class _Message(msgspec.Struct, frozen=True):
    """What travels on the fan-out channel (an update's ``client_id`` is empty)."""

    client_id: str
    frame: Stamped


_message_encoder = msgspec.json.Encoder()
_message_decoder = msgspec.json.Decoder(_Message)


async def publish_frame(client: Any, channel: str, client_id: str, frame: Notification) -> None:
    await client.publish(
        channel, _message_encoder.encode(_Message(client_id, cast(Stamped, frame)))
    )


def _decode(data: object) -> tuple[str, Notification] | None:
    if not isinstance(data, bytes | str) or len(data) > MAX_MESSAGE_BYTES:
        return None
    try:
        message = _message_decoder.decode(data)
    except (msgspec.DecodeError, RecursionError):
        return None
    frame = message.frame
    if frame.seq is None:
        return None
    if isinstance(frame, Update):
        return ("", frame) if topic_ok(frame.topic) else None
    cid = parse_id(message.client_id)
    return None if cid is None else (cid, frame)


class RedisFanout:
    def __init__(
        self,
        redis_url: str,
        channel: str,
        dispatch: Callable[[str, Notification], Awaitable[None]],
        on_resubscribe: Callable[[], Awaitable[None]],
    ) -> None:
        self._redis = connect_redis(redis_url)
        self._channel = channel
        self._dispatch = dispatch
        self._on_resubscribe = on_resubscribe
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    async def publish(self, client_id: str, frame: Notification) -> None:
        await publish_frame(self._redis, self._channel, client_id, frame)

    async def start(self) -> None:
        """Start listening (once) and wait until subscribed, so nothing published after this
        returns is missed."""
        if self._task is None:
            self._task = asyncio.create_task(self._listen(), name="clicktrace-notify-fanout")
        await self._subscribed.wait()

    async def _listen(self) -> None:
        backoff, first = _BACKOFF_START, True
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                self._subscribed.set()
                if not first:
                    await self._on_resubscribe()
                first, backoff = False, _BACKOFF_START
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    decoded = _decode(message.get("data"))
                    if decoded is None:
                        _log.warning("clicktrace: dropped a malformed fan-out message")
                        continue
                    await self._dispatch(*decoded)
            except asyncio.CancelledError:
                raise
            except Exception:
                _log.warning("clicktrace: fan-out listener lost Redis; retrying", exc_info=True)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)
            finally:
                await pubsub.aclose()

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._redis.aclose()
