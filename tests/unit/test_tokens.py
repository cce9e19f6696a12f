"""Session tokens are bound to one session and expire."""

from __future__ import annotations

import time
import uuid

import pytest

from sessions_app.tokens import TokenRefused, check_token, issue_token, session_of_token


def test_token_opens_its_own_session():
    session_id = uuid.uuid4()
    check_token(issue_token(session_id), session_id)


@pytest.mark.parametrize("token", [None, "", "garbage", "a:b:c"])
def test_missing_or_malformed_token_is_refused(token):
    with pytest.raises(TokenRefused):
        check_token(token, uuid.uuid4())


def test_token_for_another_session_is_refused():
    with pytest.raises(TokenRefused, match="another session"):
        check_token(issue_token(uuid.uuid4()), uuid.uuid4())


def test_expired_token_is_refused(settings, monkeypatch):
    session_id = uuid.uuid4()
    token = issue_token(session_id)
    a_day_later = time.time() + 86400
    monkeypatch.setattr(time, "time", lambda: a_day_later)
    with pytest.raises(TokenRefused, match="expired"):
        check_token(token, session_id)


def test_tampered_token_is_refused():
    session_id = uuid.uuid4()
    token = issue_token(session_id)
    value, signature = token.rsplit(":", 1)
    flipped = "B" if signature[0] == "A" else "A"  # the first character carries six signature bits
    with pytest.raises(TokenRefused, match="invalid"):
        check_token(f"{value}:{flipped}{signature[1:]}", session_id)


def test_a_token_names_its_session_for_as_long_as_it_is_asked_to(monkeypatch):
    session_id = uuid.uuid4()
    token = issue_token(session_id)
    an_hour_later = time.time() + 3600
    monkeypatch.setattr(time, "time", lambda: an_hour_later)
    assert session_of_token(token, max_age_s=86400) == session_id
    with pytest.raises(TokenRefused, match="expired"):
        session_of_token(token, max_age_s=900)
