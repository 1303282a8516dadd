"""The admin's and the dashboard's logins against an attacker (one lockout for every login, the
throttle, TOTP for staff), and the account pages: password change, reset by mail, two-factor."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

User = get_user_model()


def admin_login(client: Client, username: str, password: str, otp_token: str = "") -> Any:
    data = {"username": username, "password": password, "next": "/admin/"}
    if otp_token:
        data["otp_token"] = otp_token
    return client.post("/admin/login/?next=/admin/", data)


def dashboard_login(client: Client, login: str, password: str) -> Any:
    return client.post("/login/", {"username": login, "password": password})


def code_of(device: TOTPDevice, *, step_offset: int = 0) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = totp.time + step_offset * device.step
    return f"{totp.token():0{device.digits}d}"


@pytest.fixture
def staff() -> Any:
    return UserFactory(username="root", email="root@example.com", is_staff=True, is_superuser=True)


# --- One lockout for every login ------------------------------------------------------------------------


def test_the_admin_login_locks_out_after_repeated_failures(staff, settings):
    settings.AXES_FAILURE_LIMIT = 5
    client = Client()
    answers = [admin_login(client, "root", f"guess-{i}").status_code for i in range(5)]

    assert answers == [200, 200, 200, 200, 429]  # the form's error, then the lockout page
    locked = admin_login(client, "root", "pw-test-123")
    assert locked.status_code == 429 and "Retry-After" in locked.headers
    page = locked.content.decode()
    assert "Logins locked" in page and "Too many failed login attempts" in page and 'id="locked-out"' in page
    assert "/static/admin/css/base.css" in page  # in the admin's look
    assert "_auth_user_id" not in client.session


def test_failures_count_across_the_admin_the_dashboard_and_the_api(staff, settings):
    settings.AXES_FAILURE_LIMIT = 3
    client = Client()
    assert admin_login(client, "root", "guess").status_code == 200
    assert dashboard_login(client, "root@example.com", "guess").status_code == 200
    api = APIClient()
    assert api.post("/api/auth/token/", {"email": "root", "password": "guess"}).status_code == 429

    # Locked everywhere, in each one's own form.
    page = dashboard_login(Client(), "root", "pw-test-123")
    assert page.status_code == 429 and 'id="locked-out"' in page.content.decode()
    assert "/static/dashboard/dashboard.css" in page.content.decode()
    assert admin_login(Client(), "root", "pw-test-123").status_code == 429
    token = api.post("/api/auth/token/", {"email": "root@example.com", "password": "pw-test-123"})
    assert token.status_code == 429 and token.json()["error"]["code"] == "locked_out"


def test_the_admin_login_is_rate_throttled_like_the_others(staff, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "auth": "2/min"},
    }
    settings.AXES_FAILURE_LIMIT = 100
    client = Client()
    assert [admin_login(client, "root", "guess").status_code for _ in range(3)] == [200, 200, 429]
    throttled = admin_login(client, "root", "pw-test-123")
    assert throttled.status_code == 429 and "Too many login attempts" in throttled.content.decode()
    # The same history as the dashboard's and the API's logins.
    assert dashboard_login(client, "root", "pw-test-123").status_code == 429
    assert APIClient().post("/api/auth/token/", {"email": "root", "password": "pw-test-123"}).status_code == 429


# --- TOTP for staff --------------------------------------------------------------------------------------------


def enrol(client: Client) -> TOTPDevice:
    page = client.post("/account/two-factor/", {"action": "start"})
    assert page.status_code == 200 and "<svg" in page.content.decode()
    device = TOTPDevice.objects.get(user__username="root", confirmed=False)
    assert re.search(r'id="totp-secret">[A-Z2-7]{32}<', page.content.decode())
    wrong = client.post("/account/two-factor/", {"action": "confirm", "otp_token": "000000"})
    assert "That code is not valid." in wrong.content.decode()
    device.refresh_from_db()
    assert device.throttling_failure_count == 1  # django-otp backs off after a wrong code: reset it
    device.throttling_failure_count = 0
    device.save()
    confirmed = client.post("/account/two-factor/", {"action": "confirm", "otp_token": code_of(device)})
    assert confirmed.status_code == 302
    device.refresh_from_db()
    assert device.confirmed
    return device


def test_staff_enrol_totp_and_the_admin_then_asks_for_a_code(staff):
    browser = Client()
    browser.force_login(staff)
    device = enrol(browser)
    assert "On:" in browser.get("/account/two-factor/").content.decode()

    client = Client()
    missing = admin_login(client, "root", "pw-test-123")
    assert missing.status_code == 200 and "Enter the current code" in missing.content.decode()
    assert "_auth_user_id" not in client.session
    wrong = admin_login(client, "root", "pw-test-123", otp_token="123456")
    assert "That code is not valid." in wrong.content.decode()
    device.refresh_from_db()
    device.throttling_failure_count = 0  # django-otp's own backoff after a wrong code
    device.save()
    ok = admin_login(client, "root", "pw-test-123", otp_token=code_of(device, step_offset=1))
    assert ok.status_code == 302, ok.content.decode()[:2000]
    assert client.get("/admin/").status_code == 200

    # A session that logged in on the dashboard only (no code) does not open the admin.
    dashboard_only = Client()
    assert dashboard_login(dashboard_only, "root", "pw-test-123").status_code == 302
    assert dashboard_only.get("/admin/").status_code == 302


def test_wrong_codes_count_toward_the_lockout(staff, settings):
    settings.AXES_FAILURE_LIMIT = 3
    TOTPDevice.objects.create(user=staff, name="app", confirmed=True)
    client = Client()
    answers = [admin_login(client, "root", "pw-test-123", otp_token="000000").status_code for _ in range(3)]
    assert answers == [200, 200, 429]


def test_admin_require_totp_refuses_staff_without_an_authenticator(staff, settings):
    settings.ADMIN_REQUIRE_TOTP = True
    client = Client()
    refused = admin_login(client, "root", "pw-test-123")
    assert refused.status_code == 200 and "requires two-factor authentication" in refused.content.decode()
    # An older session without the second factor no longer opens the admin either.
    old = Client()
    old.force_login(staff)
    assert old.get("/admin/").status_code == 302
    # After enrolling (which verifies the session), it does.
    device = enrol(old)
    assert old.get("/admin/").status_code == 200
    assert admin_login(Client(), "root", "pw-test-123", otp_token=code_of(device, step_offset=1)).status_code == 302


def test_two_factor_is_for_staff_only(user):
    client = Client()
    client.force_login(user)
    assert client.get("/account/two-factor/").status_code == 403
    assert "Two-factor" not in client.get("/account/").content.decode()


def test_removing_the_authenticator_takes_a_current_code(staff):
    client = Client()
    client.force_login(staff)
    device = enrol(client)
    assert (
        "That code is not valid."
        in client.post("/account/two-factor/", {"action": "remove", "otp_token": "000000"}).content.decode()
    )
    device.refresh_from_db()
    device.throttling_failure_count = 0
    device.save()
    assert (
        client.post(
            "/account/two-factor/", {"action": "remove", "otp_token": code_of(device, step_offset=1)}
        ).status_code
        == 302
    )
    assert not TOTPDevice.objects.filter(user=staff).exists()


# --- Passwords on the dashboard ----------------------------------------------------------------------------------


def test_password_change_page(user):
    client = Client()
    client.force_login(user)
    other = Client()
    other.force_login(user)
    page = client.get("/password/change/")
    assert page.status_code == 200 and 'name="old_password"' in page.content.decode()

    wrong = client.post(
        "/password/change/", {"old_password": "x", "new_password1": "new-pass-77-x", "new_password2": "new-pass-77-x"}
    )
    assert wrong.status_code == 200 and "error" in wrong.content.decode()
    done = client.post(
        "/password/change/",
        {"old_password": "pw-alice-123", "new_password1": "new-pass-77-x", "new_password2": "new-pass-77-x"},
    )
    assert done.status_code == 302 and done.url == "/password/change/done/"
    assert client.get("/").status_code == 200  # this session stays
    assert other.get("/").status_code == 302  # the others end


def test_password_reset_pages_send_a_working_link(user, eager_tasks, django_capture_on_commit_callbacks, settings):
    settings.SITE_URL = "http://testserver"
    client = Client()
    assert 'href="/password/reset/"' in client.get("/login/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        sent = client.post("/password/reset/", {"email": "alice@example.com"})
    assert sent.status_code == 302 and sent.url == "/password/reset/sent/"
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post("/password/reset/", {"email": "nobody@example.com"}).url == "/password/reset/sent/"
    [message] = mail.outbox
    link = re.search(r"http://testserver(/password/reset/[^/]+/[^/]+/)", message.body)
    assert link, message.body

    form = client.get(link.group(1), follow=True)
    assert form.status_code == 200 and 'name="new_password1"' in form.content.decode()
    done = client.post(form.redirect_chain[-1][0], {"new_password1": "reset-pass-55", "new_password2": "reset-pass-55"})
    assert done.status_code == 302 and done.url == "/password/reset/done/"
    assert dashboard_login(Client(), "alice@example.com", "reset-pass-55").status_code == 302
    used = client.get(link.group(1), follow=True)
    assert 'id="invalid-link"' in used.content.decode()


def test_password_reset_requests_are_throttled(user, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "auth": "2/min"},
    }
    client = Client()
    answers = [client.post("/password/reset/", {"email": "alice@example.com"}).status_code for _ in range(3)]
    assert answers == [302, 302, 429]
