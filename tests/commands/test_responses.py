"""The protocol's answers to a command: 202 with the bound correlation id, 401 for a refused
token, 503 with Retry-After."""

from __future__ import annotations

import json

import pytest
from starlette.requests import HTTPConnection

from clicktrace import context as click_context
from clicktrace.asgi.middleware import CLIENT_REFUSED
from clicktrace.commands import accepted, invalid_client, unavailable
from clicktrace.ids import parse_id


def test_accepted_carries_the_bound_correlation_id_or_a_fresh_one() -> None:
    click = click_context.ClickContext(correlation_id="01JABCDEFGHJKMNPQRSTVWXYZ0")
    with click_context.bound(click):
        bound = accepted()
    assert bound.status_code == 202
    assert json.loads(bytes(bound.body)) == {
        "correlation_id": click.correlation_id,
        "status": "accepted",
    }
    fresh = json.loads(bytes(accepted().body))["correlation_id"]
    assert parse_id(fresh) is not None and fresh != click.correlation_id
    assert json.loads(bytes(accepted("given").body))["correlation_id"] == "given"


def test_invalid_client_answers_only_a_refused_token() -> None:
    base = {"type": "http", "headers": []}
    assert invalid_client(HTTPConnection(base)) is None
    refused = invalid_client(HTTPConnection({**base, CLIENT_REFUSED: True}))
    assert refused is not None and refused.status_code == 401
    assert json.loads(bytes(refused.body))["error"]["code"] == "invalid_client"


def test_unavailable_says_when_to_come_back() -> None:
    busy = unavailable(retry_after=3)
    assert busy.status_code == 503 and busy.headers["retry-after"] == "3"
    assert json.loads(bytes(busy.body))["error"]["code"] == "unavailable"
    with pytest.raises(ValueError):
        unavailable(retry_after=-1)
