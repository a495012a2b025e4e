"""The protocol's error body."""

from __future__ import annotations

import json
from collections.abc import MutableMapping

import pytest

from clicktrace.context import ClickContext, bound
from clicktrace.ids import parse_id
from clicktrace.web import Refusal, error_body, error_response, send_error
from clicktrace.web._refusal import refuse

CORR = "01JD8X3Q7E8W5V4T2N9R6M0K1A"


def test_error_response_uses_the_bound_correlation_id() -> None:
    with bound(ClickContext(CORR)):
        response = error_response(404, "not_found", "No such product.")
    assert response.status_code == 404
    assert response.media_type == "application/json"
    assert json.loads(bytes(response.body)) == {
        "error": {"code": "not_found", "message": "No such product."},
        "correlation_id": CORR,
    }


def test_without_a_context_a_fresh_id_keeps_the_body_valid() -> None:
    body = json.loads(bytes(error_response(400, "invalid_body", "x").body))
    assert parse_id(body["correlation_id"]) == body["correlation_id"]


def test_only_error_statuses() -> None:
    with pytest.raises(ValueError):
        error_response(200, "fine", "not an error")


def test_error_body_escapes_text() -> None:
    body = json.loads(error_body("c", 'quote " and \n newline', CORR))
    assert body["error"]["message"] == 'quote " and \n newline'


async def test_send_error_over_raw_asgi() -> None:
    sent: list[dict[str, object]] = []

    async def send(message: MutableMapping[str, object]) -> None:
        sent.append(dict(message))

    await send_error(send, Refusal(400, "bad", "Bad."), CORR, ((b"x-extra", b"1"),))
    assert sent[0] == {
        "type": "http.response.start",
        "status": 400,
        "headers": [(b"content-type", b"application/json"), (b"x-extra", b"1")],
    }
    assert json.loads(sent[1]["body"]) == {  # type: ignore[arg-type]
        "error": {"code": "bad", "message": "Bad."},
        "correlation_id": CORR,
    }


def test_a_refusal_is_one_value_for_body_response_and_route_answers() -> None:
    refusal = Refusal(409, "conflict", "Taken.")
    assert refusal.body(CORR) == error_body("conflict", "Taken.", CORR)
    with bound(ClickContext(CORR)):
        response = refusal.response()
    assert (response.status_code, response.body) == (409, error_body("conflict", "Taken.", CORR))
    routed = refuse(refusal, CORR, {"retry-after": "1"})
    assert routed.status_code == 409 and routed.body == refusal.body(CORR)
    assert routed.headers["x-correlation-id"] == CORR and routed.headers["retry-after"] == "1"


def test_a_client_librarys_outage_is_known_by_name_and_a_programming_error_is_not() -> None:
    import asyncpg.exceptions
    import nats.errors
    import redis.exceptions

    from clicktrace.web._errors import is_outage

    for outage in (
        redis.exceptions.ConnectionError("down"),
        redis.exceptions.BusyLoadingError("loading"),  # a subclass: matched along the MRO
        asyncpg.exceptions.ConnectionDoesNotExistError("gone"),
        asyncpg.exceptions.CannotConnectNowError("starting"),
        nats.errors.NoServersError(),
        ConnectionRefusedError(),
        TimeoutError(),
    ):
        assert is_outage(outage), outage
    for bug in (ValueError("x"), redis.exceptions.ResponseError("WRONGTYPE"), KeyError("k")):
        assert not is_outage(bug), bug
