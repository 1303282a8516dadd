"""The API's account endpoints against an attacker: lockout, logout, revoked tokens, a deleted
user's refresh, registration that tells nothing, password change and reset by mail."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

User = get_user_model()


def login(client: APIClient, email: str = "alice@example.com", password: str = "pw-alice-123", **extra: Any) -> Any:
    return client.post("/api/auth/token/", {"email": email, "password": password}, format="json", **extra)


def bearer(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


# --- Lockout ------------------------------------------------------------------------------------------


def test_failed_logins_lock_the_address_out_even_for_the_right_password(anon, user, settings):
    settings.AXES_FAILURE_LIMIT = 5
    answers = [login(anon, password=f"guess-{i}").status_code for i in range(6)]

    # The fifth failure reaches the limit: from then on every login from here is refused.
    assert answers == [401, 401, 401, 401, 429, 429]
    locked = login(anon)
    assert locked.status_code == 429
    error = locked.json()["error"]
    assert error["code"] == "locked_out" and "locked for" in error["message"]
    assert 60 <= int(locked.headers["Retry-After"]) <= 15 * 60
    # Another address, another account: not locked (per address) ...
    assert login(APIClient(REMOTE_ADDR="203.0.113.9"), email="bob@example.com", password="x").status_code == 401


def test_failed_logins_lock_the_account_out_from_every_address(anon, user, settings):
    settings.AXES_FAILURE_LIMIT = 3
    # One guess from each of many addresses (a botnet): the account itself locks.
    for i in range(3):
        assert login(APIClient(REMOTE_ADDR=f"198.51.100.{i}"), password="guess").status_code in (401, 429)
    # By email or by username: the same account.
    assert login(APIClient(REMOTE_ADDR="198.51.100.50"), email="alice").status_code == 429
    assert login(APIClient(REMOTE_ADDR="198.51.100.51")).status_code == 429


def test_the_lockout_counts_the_address_the_proxy_saw(user, settings):
    settings.AXES_FAILURE_LIMIT = 2
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    client = APIClient(REMOTE_ADDR="10.0.0.1")  # the proxy

    def attempt(forwarded_for: str, email: str) -> int:
        return int(login(client, email=email, password="guess", HTTP_X_FORWARDED_FOR=forwarded_for).status_code)

    # What the client writes before the proxy's entry changes nothing: one address, locked.
    assert [attempt(f"1.2.3.{i}, 203.0.113.7", f"nobody{i}@example.com") for i in range(3)] == [401, 429, 429]
    # Another client behind the same proxy is not.
    assert attempt("203.0.113.8", "someone@example.com") == 401


def test_the_lockout_ends_after_the_cool_off(anon, user, settings):
    from axes.models import AccessAttempt
    from django.utils import timezone

    settings.AXES_FAILURE_LIMIT = 2
    assert [login(anon, password="guess").status_code for _ in range(2)] == [401, 429]
    AccessAttempt.objects.update(attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME)

    assert login(anon).status_code == 200


# --- Tokens ---------------------------------------------------------------------------------------------


def test_logout_blacklists_the_refresh_token(anon, user):
    tokens = login(anon).json()

    assert anon.post("/api/auth/logout/", {"refresh": tokens["refresh"]}, format="json").status_code == 204
    refused = anon.post("/api/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "token_not_valid"
    # A repeat is harmless; garbage is not a token.
    assert anon.post("/api/auth/logout/", {"refresh": tokens["refresh"]}, format="json").status_code == 204
    assert anon.post("/api/auth/logout/", {"refresh": "garbage"}, format="json").status_code == 401
    assert anon.post("/api/auth/logout/", {"refresh": tokens["access"]}, format="json").status_code == 401
    assert anon.post("/api/auth/logout/", {}, format="json").status_code == 400


def test_a_password_change_ends_every_earlier_token(anon, user):
    old = login(anon).json()
    client = bearer(old["access"])

    wrong = client.post(
        "/api/auth/password/change/", {"old_password": "nope", "new_password": "a-new-passphrase-42"}, format="json"
    )
    assert wrong.status_code == 400 and "old_password" in wrong.json()["error"]["fields"]
    weak = client.post(
        "/api/auth/password/change/", {"old_password": "pw-alice-123", "new_password": "123"}, format="json"
    )
    assert weak.status_code == 400 and "new_password" in weak.json()["error"]["fields"]
    changed = client.post(
        "/api/auth/password/change/",
        {"old_password": "pw-alice-123", "new_password": "a-new-passphrase-42"},
        format="json",
    )
    assert changed.status_code == 200, changed.json()

    # The old access token and refresh token are dead; the new pair works.
    stale = client.get("/api/bots/")
    assert stale.status_code == 401 and stale.json()["error"]["code"] == "password_changed"
    refresh = anon.post("/api/auth/token/refresh/", {"refresh": old["refresh"]}, format="json")
    assert refresh.status_code == 401 and refresh.json()["error"]["code"] == "password_changed"
    assert bearer(changed.json()["access"]).get("/api/bots/").status_code == 200
    assert (
        anon.post("/api/auth/token/refresh/", {"refresh": changed.json()["refresh"]}, format="json").status_code == 200
    )
    assert login(anon).status_code == 401
    assert login(anon, password="a-new-passphrase-42").status_code == 200


def test_a_deleted_users_tokens_answer_401(anon, user):
    tokens = login(anon).json()
    user.delete()

    refresh = anon.post("/api/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json")
    assert refresh.status_code == 401 and refresh.json()["error"]["code"] == "no_active_account"
    access = bearer(tokens["access"]).get("/api/bots/")
    assert access.status_code == 401 and access.json()["error"]["code"] == "user_not_found"


def test_an_inactive_users_refresh_answers_401(anon, user):
    tokens = login(anon).json()
    user.is_active = False
    user.save()

    refresh = anon.post("/api/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json")
    assert refresh.status_code == 401


def test_guessing_the_old_password_with_a_stolen_token_meets_the_lockout(anon, user, settings):
    settings.AXES_FAILURE_LIMIT = 3
    client = bearer(login(anon).json()["access"])
    answers = [
        client.post(
            "/api/auth/password/change/", {"old_password": f"guess-{i}", "new_password": "x-new-pass-99"}, format="json"
        ).status_code
        for i in range(4)
    ]
    assert answers == [400, 400, 429, 429]


# --- Registration -----------------------------------------------------------------------------------------


def test_registration_is_closed_unless_the_operator_opens_it(anon, settings):
    settings.ALLOW_REGISTRATION = False
    closed = anon.post("/api/auth/register/", {"email": "eve@example.com", "password": "a-long-passphrase-9"})

    assert closed.status_code == 403 and closed.json()["error"]["code"] == "registration_closed"
    assert not User.objects.filter(email="eve@example.com").exists()


def test_registration_does_not_tell_whether_an_email_has_an_account(
    anon, user, registration_open, eager_tasks, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        taken = anon.post("/api/auth/register/", {"email": "ALICE@example.com", "password": "a-long-passphrase-9"})
    with django_capture_on_commit_callbacks(execute=True):
        free = anon.post("/api/auth/register/", {"email": "carol@example.com", "password": "a-long-passphrase-9"})

    assert (taken.status_code, free.status_code) == (202, 202)
    assert taken.json()["detail"] == free.json()["detail"]
    assert set(taken.json()) == set(free.json()) == {"email", "detail"}
    # Nothing changed on the existing account; its owner was told by mail.
    user.refresh_from_db()
    assert user.check_password("pw-alice-123") and User.objects.filter(email__iexact="alice@example.com").count() == 1
    [notice] = mail.outbox
    assert notice.to == ["alice@example.com"] and "already have an account" in notice.body
    assert "/password/reset/" in notice.body and "a-long-passphrase-9" not in notice.body


# --- Password reset ------------------------------------------------------------------------------------------


def test_password_reset_by_mail(anon, user, eager_tasks, django_capture_on_commit_callbacks, settings):
    settings.SITE_URL = "https://trading.example.com"
    with django_capture_on_commit_callbacks(execute=True):
        sent = anon.post("/api/auth/password/reset/", {"email": "Alice@Example.com"}, format="json")
    with django_capture_on_commit_callbacks(execute=True):
        unknown = anon.post("/api/auth/password/reset/", {"email": "nobody@example.com"}, format="json")

    assert (sent.status_code, unknown.status_code) == (202, 202) and sent.json() == unknown.json()
    [message] = mail.outbox
    assert message.to == ["alice@example.com"] and message.subject == "Reset your tradingagent password"
    link = re.search(r"https://trading\.example\.com/password/reset/([^/]+)/([^/]+)/", message.body)
    assert link, message.body
    uid, token = link.groups()
    assert f"uid: {uid}" in message.body and f"token: {token}" in message.body

    old_access = login(anon).json()["access"]
    weak = anon.post("/api/auth/password/reset/confirm/", {"uid": uid, "token": token, "new_password": "1234"})
    assert weak.status_code == 400 and "new_password" in weak.json()["error"]["fields"]
    done = anon.post(
        "/api/auth/password/reset/confirm/", {"uid": uid, "token": token, "new_password": "reset-passphrase-77"}
    )
    assert done.status_code == 200, done.json()
    assert login(anon, password="reset-passphrase-77").status_code == 200
    assert bearer(old_access).get("/api/bots/").status_code == 401  # earlier tokens ended
    # The link works once.
    again = anon.post(
        "/api/auth/password/reset/confirm/", {"uid": uid, "token": token, "new_password": "another-pass-88"}
    )
    assert again.status_code == 400 and "token" in again.json()["error"]["fields"]
    assert (
        anon.post(
            "/api/auth/password/reset/confirm/", {"uid": "!!", "token": "x", "new_password": "another-pass-88"}
        ).status_code
        == 400
    )


def test_websocket_tokens_from_before_a_password_change_are_refused(anon, user):
    from alerts.consumers import user_for_token

    access = login(anon).json()["access"]
    assert user_for_token(access) is not None
    user.set_password("a-new-passphrase-42")
    user.save()
    assert user_for_token(access) is None
