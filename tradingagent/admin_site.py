"""The project's AdminSite: Django's, with its login throttled and locked out like every other
login (tradingagent.logins) and a second factor for staff (TOTP, django-otp).

A staff user who added an authenticator on the dashboard's two-factor page must give its code to
log in here; with ADMIN_REQUIRE_TOTP every staff user must have one, and the admin refuses a
session that did not pass it (a dashboard login alone does not open the admin). A wrong code counts
as a failed login for the lockout.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.signals import user_login_failed
from django.http import HttpRequest, HttpResponse

from accounts.services import totp_device_of, totp_verify
from tradingagent.logins import login_throttle_wait, throttled_page


class AdminLoginForm(AdminAuthenticationForm):
    otp_token = forms.CharField(
        required=False,
        label="Authenticator code",
        max_length=8,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
        help_text="The 6-digit code of your authenticator app, if you set one up.",
    )

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean()  # the password (through the lockout) and is_staff
        user = self.get_user()
        if user is None:
            return cleaned
        device = totp_device_of(user)
        if device is None:
            if settings.ADMIN_REQUIRE_TOTP:
                raise forms.ValidationError(
                    "The admin requires two-factor authentication: log in to the dashboard and add an "
                    "authenticator app at /account/two-factor/ first.",
                    code="totp_required",
                )
            return cleaned
        token = (cleaned.get("otp_token") or "").strip()
        verified = totp_verify(user=user, token=token) if token else None
        if verified is None:
            # Counted like a wrong password: guessing codes runs into the same lockout.
            user_login_failed.send(
                sender=type(self), credentials={"username": user.get_username()}, request=self.request
            )
            self.user_cache = None
            raise forms.ValidationError(
                "Enter the current code of your authenticator app." if not token else "That code is not valid.",
                code="invalid_token",
            )
        # django-otp's login signal handler stores the verified device in the session.
        user.otp_device = verified  # type: ignore[attr-defined]
        return cleaned


class AdminSite(admin.AdminSite):
    login_form = AdminLoginForm
    login_template = "admin/login_totp.html"

    def has_permission(self, request: HttpRequest) -> bool:
        if not super().has_permission(request):
            return False
        user: Any = request.user
        verified = bool(getattr(user, "is_verified", lambda: False)())
        if verified:
            return True
        # Unverified: fine only while no second factor is required of this user.
        return not settings.ADMIN_REQUIRE_TOTP and totp_device_of(user) is None

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if request.method == "POST":
            wait = login_throttle_wait(request)
            if wait is not None:

                def page(message: str) -> HttpResponse:
                    response = super(AdminSite, self).login(
                        _as_get(request), {**(extra_context or {}), "throttled": message}
                    )
                    response.render()  # type: ignore[attr-defined]
                    return response

                return throttled_page(page, wait)
        return super().login(request, extra_context)


def _as_get(request: HttpRequest) -> HttpRequest:
    # The login page without the refused submission (a bound form would check the password).
    request.method = "GET"
    return request
