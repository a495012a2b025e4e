"""The console's session cookie and sign-in page, as units."""

from __future__ import annotations

import pytest

from clicktrace.console._auth import Sessions, sign_in_page

TOKEN = "operator-secret-token-for-the-console"


def test_a_cookie_holds_no_token_and_is_valid_until_it_expires() -> None:
    now = [1000.0]
    sessions = Sessions(TOKEN, seconds=60, clock=lambda: now[0])
    value = sessions.cookie()
    assert TOKEN not in value and sessions.valid(value)
    now[0] += 61
    assert not sessions.valid(value)


def test_a_cookie_of_another_token_or_a_changed_one_is_refused() -> None:
    sessions = Sessions(TOKEN)
    value = sessions.cookie()
    expiry, nonce, mac = value.split(".")
    assert not Sessions("another").valid(value)  # a new token signs everyone out
    for forged in (f"9{expiry}.{nonce}.{mac}", f"{expiry}.x{nonce}.{mac}", f"{expiry}.{nonce}."):
        assert not sessions.valid(forged)
    for junk in (None, "", "...", "a" * 10_000, "1.2", "١٢٣.a.b"):
        assert not sessions.valid(junk)


def test_the_token_is_compared_whole_and_bounded() -> None:
    sessions = Sessions(TOKEN)
    assert sessions.right_token(TOKEN)
    for wrong in ("", TOKEN[:-1], TOKEN + "x", TOKEN.upper(), "x" * 5000):
        assert not sessions.right_token(wrong)


def test_no_token_no_sessions() -> None:
    with pytest.raises(ValueError, match="operator token"):
        Sessions("")


def test_the_sign_in_page_has_a_labelled_field_no_script_and_escapes_its_lines() -> None:
    page = sign_in_page("/clicktrace/console/session", "<b>no</b>")
    assert '<label for="token">' in page and 'id="token" name="token" type="password"' in page
    assert "<script" not in page and "&lt;b&gt;no&lt;/b&gt;" in page
    assert 'action="/clicktrace/console/session"' in page
