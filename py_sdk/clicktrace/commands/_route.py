"""A command endpoint in one call: ``command_route(path, type, bus, topic=...)``.

Every route that takes a command does the same things in the same order: refuse a token the
middleware refused (401, so the plugin renews its session and resends), read the body up to
a cap (413) as a JSON object (400), complete the click with the body's metadata (the
plugin's deadline travels there too), build the payload (422 when it does not validate),
publish the envelope, answer ``202 accepted``. Written out in every app, that was the glue
each one repeated; :func:`read_command` is the first half alone, for a route that writes
its event in a transaction of its own (an outbox) instead of publishing.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from clicktrace import context as click_context
from clicktrace.bus import Bus
from clicktrace.claims import Claims
from clicktrace.commands._once import once
from clicktrace.commands._responses import accepted, invalid_client, unavailable
from clicktrace.envelope import new_envelope
from clicktrace.projection import Rejected
from clicktrace.propagation import METADATA_KEYS, extract
from clicktrace.protocol import INVALID_BODY
from clicktrace.web._body import MAX_BODY_BYTES, read_json_object
from clicktrace.web._errors import Refusal, error_response, validation_message

__all__ = ["Command", "command_route", "read_command"]

INVALID_MESSAGE = "The command's fields are not valid."
_log = logging.getLogger("clicktrace.commands")


@dataclass(frozen=True, slots=True)
class Command:
    """A command as the route read it: its ``body`` (without the plugin's ``metadata``), the
    route's ``path_params``, and the request's ``click`` completed by the body's metadata."""

    body: dict[str, Any]
    path_params: Mapping[str, Any]
    click: click_context.ClickContext | None


Payload = Callable[[Command], Any]
"""What the envelope carries, from the command: a value or an awaitable of one. It raises
:class:`~clicktrace.projection.Rejected` (422 with its code and message) or ``ValueError``
(422 ``invalid_body``; a pydantic ``ValidationError`` is one) to refuse the command."""


def _completed(metadata: Any) -> click_context.ClickContext | None:
    """The request's context, completed by the body metadata where the headers were silent
    (headers win; the client id only ever comes from the verified token)."""
    click = click_context.current()
    if click is None or click.deadline_ms is not None or not isinstance(metadata, dict):
        return click
    deadline = extract(metadata, keys=METADATA_KEYS).deadline_ms
    return click if deadline is None else click._replace(deadline_ms=deadline)


async def read_command(request: Request, *, max_bytes: int = MAX_BODY_BYTES) -> Command | Response:
    """The command ``request`` carries, or the response that refuses it: 401 for a token
    the middleware refused, 413 past ``max_bytes``, 400 for a body that is not a JSON object
    (or too deep)."""
    refused = invalid_client(request)
    if refused is not None:
        return refused
    body = await read_json_object(request, max_bytes=max_bytes)
    if isinstance(body, Refusal):
        return body.response()
    metadata = body.pop("metadata", None)
    return Command(body, request.path_params, _completed(metadata))


def _invalid(exc: ValueError) -> Response:
    errors = getattr(exc, "errors", None)  # pydantic's ValidationError says which field
    message = INVALID_MESSAGE
    if callable(errors):
        try:
            found = errors()
        except Exception:  # a ValueError of another kind: keep the generic message
            found = None
        if isinstance(found, Sequence) and found:
            message = validation_message(found) or INVALID_MESSAGE
    return error_response(422, INVALID_BODY, message)


def command_route(
    path: str,
    type: str,
    bus: Bus,
    *,
    topic: str,
    payload: Payload | None = None,
    claims: Claims | None = None,
    methods: Sequence[str] = ("POST",),
    max_bytes: int = MAX_BODY_BYTES,
    name: str | None = None,
) -> Route:
    """A Starlette route that takes a command and publishes it as an envelope of ``type`` on
    ``topic``: :func:`read_command`, then ``payload(command)`` (default: the body), then
    ``bus.publish``, then ``202 {"correlation_id", "status": "accepted"}``.

    A refused payload is 422 (:data:`Payload`); a bus that cannot take the envelope (not
    started, broker down) is ``503`` with ``Retry-After``, nothing published. With
    ``claims`` (any :mod:`clicktrace.claims` backend) a retried command gets its first
    answer instead of a second envelope (:func:`~clicktrace.commands.once`). Give the route
    to ``clicktrace.install(app, routes=[...])`` or to the app's own routes; it needs the
    clicktrace middleware in front (``install`` adds it).
    """
    if not isinstance(bus, Bus):
        raise TypeError("bus must be a clicktrace Bus")
    if not isinstance(type, str) or not type:
        raise ValueError("type must be a non-empty str")
    if max_bytes < 1:
        raise ValueError("max_bytes must be positive")
    make = payload if payload is not None else _body

    async def publish(command: Command) -> Response:
        try:
            data = make(command)
            if inspect.isawaitable(data):
                data = await data
        except Rejected as exc:
            return error_response(422, exc.code, exc.message)
        except ValueError as exc:
            return _invalid(exc)
        envelope = new_envelope(type, data, click=command.click)
        try:
            await bus.publish(topic, envelope)
        except Exception as exc:  # nothing was published: the client may send it again
            _log.warning("command %s not published (%s): 503", type, exc.__class__.__name__)
            return unavailable("The command could not be taken now: try again shortly.")
        return accepted(envelope.metadata.correlation_id)

    async def endpoint(request: Request) -> Response:
        command = await read_command(request, max_bytes=max_bytes)
        if isinstance(command, Response):
            return command
        if claims is None:
            return await publish(command)
        return await once(claims, request, lambda: publish(command))

    return Route(path, endpoint, methods=list(methods), name=name)


def _body(command: Command) -> Any:
    return command.body
