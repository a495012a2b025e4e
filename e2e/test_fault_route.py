"""The fault panel's route on the real demo app (in-process, real HTTP): it takes only the
faults it knows with values of the right type, answers anything else with a 400 in the
protocol's error shape, and is not there when the demo's faults are off."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from clicktrace.ids import new_id, parse_id
from demo_app.server.app import create_app
from demo_app.server.settings import Settings
from e2e.serve import serving

OFF = {"fail_next": 0, "slow": False, "stopped": False, "drop_context": False, "no_outbox": False}


def settings(tmp_path: Path, faults: bool = True) -> Settings:
    return Settings(
        data_dir=tmp_path, web_dist=tmp_path, topic=f"products-{new_id()}", faults=faults
    )


def test_faults_are_set_and_read_back(tmp_path: Path) -> None:
    with serving(create_app(settings(tmp_path))) as url, httpx.Client(base_url=url) as http:
        assert http.get("/api/faults").json() == OFF
        changed = http.post("/api/faults", json={"fail_next": 2, "slow": True})
        assert changed.status_code == 200
        assert changed.json() == {**OFF, "fail_next": 2, "slow": True}
        assert http.get("/api/faults").json() == {**OFF, "fail_next": 2, "slow": True}


@pytest.mark.parametrize(
    "body",
    [
        b'{"fail_next": "3"}',
        b'{"fail_next": -1}',
        b'{"fail_next": 21}',
        b'{"fail_next": true}',
        b'{"slow": 1}',
        b'{"reboot": true}',
        b"{}",
        b"[]",
        b"not json",
        b'{"\\u001b[31m": true}',
    ],
)
def test_anything_else_is_a_400_with_the_correlation_id(tmp_path: Path, body: bytes) -> None:
    with serving(create_app(settings(tmp_path))) as url, httpx.Client(base_url=url) as http:
        reply = http.post("/api/faults", content=body, headers={"content-type": "application/json"})
        assert reply.status_code == 400
        error = reply.json()
        assert error["error"]["code"] in ("invalid_faults", "invalid_body", "invalid_json")
        assert parse_id(error["correlation_id"]) == reply.headers["x-correlation-id"]
        assert "\x1b" not in reply.text
        assert http.get("/api/faults").json() == OFF


def test_with_faults_off_there_is_no_panel(tmp_path: Path) -> None:
    with (
        serving(create_app(settings(tmp_path, faults=False))) as url,
        httpx.Client(base_url=url) as http,
    ):
        assert http.get("/api/faults").status_code == 404
        assert http.post("/api/faults", json={"slow": True}).status_code == 404
        assert http.get("/api/config").json()["faults"] is False
