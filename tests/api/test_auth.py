"""Auth: registration, JWT login and refresh, session auth with CSRF, and the auth throttle."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

User = get_user_model()


def test_register_then_use_the_token(anon, settings):
    settings.ALLOW_REGISTRATION = True
    response = anon.post(
        "/api/auth/register/", {"email": "Carol@Example.com", "password": "a-long-passphrase-9"}, format="json"
    )

    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["email"] == "carol@example.com" and "POST /api/auth/token/" in body["detail"]
    assert "password" not in body and "access" not in body
    user = User.objects.get(email="carol@example.com")
    assert user.check_password("a-long-passphrase-9") and not user.is_staff

    tokens = anon.post("/api/auth/token/", {"email": "carol@example.com", "password": "a-long-passphrase-9"}).json()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert client.get("/api/auth/me/").json()["id"] == user.pk
    assert client.get("/api/bots/").status_code == 200


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"email": "not-an-email", "password": "a-long-passphrase-9"}, "email"),
        ({"email": "dave@example.com", "password": "short"}, "password"),
        ({"email": "dave@example.com", "password": "password123"}, "password"),
        ({"email": "dave@example.com", "password": "12345678901"}, "password"),
        ({"email": "dave@example.com"}, "password"),
    ],
)
def test_register_validates_email_and_password(anon, payload, field, settings):
    settings.ALLOW_REGISTRATION = True
    response = anon.post("/api/auth/register/", payload, format="json")

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not User.objects.filter(email="dave@example.com").exists()


def test_login_with_email_or_username_and_refresh(anon, user):
    by_email = anon.post("/api/auth/token/", {"email": "alice@example.com", "password": "pw-alice-123"}, format="json")
    by_name = anon.post("/api/auth/token/", {"email": "alice", "password": "pw-alice-123"}, format="json")

    assert by_email.status_code == 200 and by_name.status_code == 200
    refreshed = anon.post("/api/auth/token/refresh/", {"refresh": by_email.json()["refresh"]}, format="json")
    assert refreshed.status_code == 200 and refreshed.json()["access"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {refreshed.json()['access']}")
    assert client.get("/api/auth/me/").json()["username"] == "alice"


def test_wrong_password_and_bad_tokens_are_401_in_the_error_format(anon, user):
    wrong = anon.post("/api/auth/token/", {"email": "alice@example.com", "password": "nope"}, format="json")
    assert wrong.status_code == 401
    assert wrong.json()["error"]["message"] == "No active account with these credentials."

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer not.a.token")
    bad = client.get("/api/bots/")
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "token_not_valid"
    assert anon.post("/api/auth/token/refresh/", {"refresh": "garbage"}, format="json").status_code == 401


def test_inactive_user_cannot_log_in(anon, user):
    user.is_active = False
    user.save()

    assert (
        anon.post(
            "/api/auth/token/", {"email": "alice@example.com", "password": "pw-alice-123"}, format="json"
        ).status_code
        == 401
    )


def test_session_auth_needs_the_csrf_token(user):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)

    assert client.get("/api/bots/").status_code == 200
    refused = client.post("/api/alerts/read-all/", {}, format="json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["error"]["message"]
    client.get("/")  # the dashboard page sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    assert client.post("/api/alerts/read-all/", {}, format="json", HTTP_X_CSRFTOKEN=token).status_code == 200


def test_login_is_throttled_per_address(anon, user, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "auth": "3/min"},
    }
    answers = [
        anon.post("/api/auth/token/", {"email": "alice@example.com", "password": "guess"}, format="json").status_code
        for _ in range(4)
    ]

    assert answers == [401, 401, 401, 429]
    throttled = anon.post("/api/auth/token/", {"email": "alice@example.com", "password": "pw-alice-123"}, format="json")
    assert throttled.status_code == 429 and throttled.json()["error"]["code"] == "throttled"
    assert "Retry-After" in throttled.headers


def test_login_throttle_ignores_a_client_supplied_x_forwarded_for(anon, user, settings):
    # NUM_PROXIES=0 (the default): the header is the client's to write, a new one per request
    # must not make a new client address.
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "auth": "3/min"},
    }
    answers = [
        anon.post(
            "/api/auth/token/",
            {"email": "alice@example.com", "password": f"guess-{i}"},
            format="json",
            HTTP_X_FORWARDED_FOR=f"10.0.0.{i}",
        ).status_code
        for i in range(4)
    ]

    assert answers == [401, 401, 401, 429]


def test_login_throttle_behind_a_proxy_counts_per_forwarded_address(anon, user, settings):
    # NUM_PROXIES=1: the address our proxy appended (the last one) is the client's.
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "NUM_PROXIES": 1,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "auth": "2/min"},
    }

    def login(forwarded_for: str) -> int:
        data = {"email": "alice@example.com", "password": "guess"}
        response = anon.post("/api/auth/token/", data, format="json", HTTP_X_FORWARDED_FOR=forwarded_for)
        return response.status_code

    # What the client wrote before the proxy's entry changes nothing; another client is counted apart.
    assert [login(f"10.0.0.{i}, 203.0.113.7") for i in range(3)] == [401, 401, 429]
    assert login("203.0.113.8") == 401


def test_api_requests_are_throttled_per_user(api, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "user": "2/min"},
    }

    assert [api.get("/api/bots/").status_code for _ in range(3)] == [200, 200, 429]
