"""What a projection says to the tab that clicked: confirm, reject, send a kept outcome, and
reject-on-dead-letter; or, with less glue, a handler that returns what to confirm and raises
:class:`Rejected` (:func:`confirm_or_reject`).

The tab is the command's ``client_id``, carried in ``envelope.metadata.client_id``. A command
sent without a client token (by curl, by a script) has none: there is nobody to tell, so these
helpers log one line and return ``None`` instead of raising.

.. code-block:: python

    async def handle(envelope: Envelope) -> None:
        ...apply it...
        await confirm(notifier.notify, envelope, data={"id": todo_id})

    bus.subscribe("todos", handle, group="projection",
                  on_dead_letter=reject_on_dead_letter(notifier.notify))

The same, told by what the handler returns or raises (``clicktrace.install(app, bus=bus,
notifier=notifier)`` sets the dead-letter hook of every subscription that has none):

.. code-block:: python

    async def handle(envelope: Envelope) -> dict[str, str]:
        if taken(envelope.payload["title"]):
            raise Rejected("duplicate", "That title is already on the list.")
        ...apply it...
        return {"id": todo_id}          # confirmed, with this as its data

    bus.subscribe("todos", confirm_or_reject(notifier.notify, handle), group="projection")

A projection that keeps its :class:`~clicktrace.claims.Outcome` with its claim
(``claims.record_outcome`` in the same transaction, :mod:`clicktrace.claims`) sends it with
``send_outcome`` after the commit, and on a redelivery sends the kept one again
(``recorded_outcome``): a process killed between its commit and its notification still gets
its tab told. A repeat is harmless: the plugin settles a
correlation id once.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from clicktrace.bus import DeadLetterHook, Handler
from clicktrace.claims import Outcome
from clicktrace.envelope import Envelope
from clicktrace.ids import escape_for_log
from clicktrace.notify import Notify

__all__ = [
    "Rejected",
    "confirm",
    "confirm_or_reject",
    "dead_letter_outcome",
    "reject",
    "reject_on_dead_letter",
    "send_outcome",
]

DEADLINE_EXCEEDED = "deadline_exceeded"
PROCESSING_FAILED = "processing_failed"
# What a tab is told when its command was dead-lettered: a code and a message for people,
# never the reason. The reason is the handler's exception text ("RuntimeError: ...", a
# database error quoting the statement), which may describe the server's internals; it
# stays in the journal's ``dead_lettered`` entry, the consumer span and the log.
DEAD_LETTER_MESSAGES = {
    DEADLINE_EXCEEDED: "The command was not applied before its deadline.",
    PROCESSING_FAILED: "The command could not be processed.",
}
_log = logging.getLogger("clicktrace.projection")


async def _tell(
    notify: Notify,
    envelope: Envelope,
    status: str,
    data: Any,
    error: dict[str, str] | None,
    versioned: dict[str, Any] | None = None,
) -> int | None:
    meta = envelope.metadata
    if meta.client_id is None:
        _log.info(
            "%s %s: no tab to tell (the command carried no client token)",
            status,
            escape_for_log(meta.correlation_id),
        )
        return None
    return await notify(
        meta.client_id,
        correlation_id=meta.correlation_id,
        status=status,
        type=meta.type,
        data=data,
        error=error,
        **(versioned or {}),  # only when given: a Notify of the app's own may not take them
    )


async def confirm(
    notify: Notify,
    envelope: Envelope,
    *,
    data: Any = None,
    version: int | None = None,
    key: str | None = None,
) -> int | None:
    """Tell the envelope's tab its command took effect; the notification's seq, or ``None``
    when the envelope has no tab. ``version``/``key``: see :func:`send_outcome`."""
    return await send_outcome(notify, envelope, Outcome.confirmed(data), version=version, key=key)


async def reject(
    notify: Notify, envelope: Envelope, code: str, message: str, *, data: Any = None
) -> int | None:
    """Tell the envelope's tab its command was refused (``code`` is snake_case, ``message``
    for humans); the tab rolls its optimistic update back."""
    return await send_outcome(notify, envelope, Outcome.rejected(code, message, data))


async def send_outcome(
    notify: Notify,
    envelope: Envelope,
    outcome: Outcome | None,
    *,
    version: int | None = None,
    key: str | None = None,
) -> int | None:
    """Tell the envelope's tab ``outcome`` (``Outcome.confirmed(data)``,
    ``Outcome.rejected(code, message)``, or one kept with the message's claim); ``None``
    (a claim kept without an outcome) sends nothing. The seq, or ``None``. ``version`` (of
    ``key``; the tab defaults it to the command's entity) is the version of the state the
    outcome carries, so the tab never writes it over a newer live update."""
    if outcome is None:
        return None
    versioned = {k: v for k, v in (("version", version), ("key", key)) if v is not None}
    return await _tell(notify, envelope, outcome.status, outcome.data, outcome.error, versioned)


def dead_letter_outcome(reason: str) -> Outcome:
    """The rejection a tab is told for a message the bus dead-lettered with ``reason``:
    ``deadline_exceeded`` or ``processing_failed`` with a generic message
    (:data:`DEAD_LETTER_MESSAGES`), never the reason itself. What a dead-letter hook keeps
    with the message's claim, so a later copy finds what the tab was told."""
    code = DEADLINE_EXCEEDED if reason == DEADLINE_EXCEEDED else PROCESSING_FAILED
    return Outcome.rejected(code, DEAD_LETTER_MESSAGES[code])


def reject_on_dead_letter(notify: Notify, *, types: Iterable[str] | None = None) -> DeadLetterHook:
    """A bus ``on_dead_letter`` hook: a message the consumer gave up on (or that came after
    its deadline) is rejected to its tab, so the tab does not wait in vain. ``types`` limits
    it to those envelope types. The code is ``deadline_exceeded`` or ``processing_failed``,
    with a generic message (:data:`DEAD_LETTER_MESSAGES`): the reason the bus gives (the
    exception text) never reaches the tab; the journal and the span keep it."""
    wanted = frozenset(types) if types is not None else None

    async def hook(envelope: Envelope, reason: str) -> None:
        if wanted is not None and envelope.metadata.type not in wanted:
            return
        await send_outcome(notify, envelope, dead_letter_outcome(reason))

    return hook


class Rejected(Exception):
    """Raised by a handler of :func:`confirm_or_reject` (or the payload of a
    :func:`clicktrace.commands.command_route`) to refuse a command: ``code`` (snake_case) and
    ``message`` go to the tab as they are, so say them for people, never with internals;
    ``data`` (JSON) is the authoritative state the tab shows instead."""

    def __init__(self, code: str, message: str, data: Any = None) -> None:
        if not isinstance(code, str) or not code:
            raise TypeError("code must be a non-empty str")
        if not isinstance(message, str):
            raise TypeError("message must be a str")
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.data = data

    @property
    def outcome(self) -> Outcome:
        return Outcome.rejected(self.code, self.message, self.data)


def confirm_or_reject(notify: Notify, handler: Callable[[Envelope], Awaitable[Any]]) -> Handler:
    """A bus handler that tells the envelope's tab what ``handler`` decided: what it returns
    is confirmed as the outcome's data (``None``: confirmed without data; an
    :class:`~clicktrace.claims.Outcome` is sent as it is, e.g. one kept with a claim), a
    :class:`Rejected` it raises is rejected (and counts as handled: the message is acked).
    Any other exception is the bus's to retry and, in the end, to dead-letter."""
    call = getattr(handler, "__call__", None)  # noqa: B004  # an object with async __call__
    if not (inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(call)):
        # a plain def would fail on every delivery, and be dead-lettered in the end
        raise TypeError("handler must be an async callable taking the envelope")

    async def handle(envelope: Envelope) -> None:
        try:
            result = await handler(envelope)
        except Rejected as rejected:
            await send_outcome(notify, envelope, rejected.outcome)
            return
        outcome = result if isinstance(result, Outcome) else Outcome.confirmed(result)
        await send_outcome(notify, envelope, outcome)

    return handle
