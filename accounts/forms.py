from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.contrib.auth.forms import PasswordResetForm as DjangoPasswordResetForm
from django.http import HttpRequest

from accounts.services import mail_on_commit, site_url


class PasswordResetForm(DjangoPasswordResetForm):
    """Django's reset form (a mail only to an active account with that address and a usable
    password; the same answer either way), with the mail sent by a worker after commit and its
    link built on SITE_URL, never on the request's Host header when SITE_URL is set."""

    def send_mail(
        self,
        subject_template_name: str,
        email_template_name: str,
        context: dict[str, Any],
        from_email: str | None,
        to_email: str,
        html_email_template_name: str | None = None,
    ) -> None:
        context = {**context, "valid_minutes": settings.PASSWORD_RESET_TIMEOUT // 60}
        mail_on_commit(to=to_email, template="password_reset", context=context)

    def save_for(self, request: HttpRequest) -> None:
        """Send the reset mail (if the address has an account) with links to this site."""
        origin = urlsplit(site_url(request))
        self.save(
            domain_override=origin.netloc,
            use_https=origin.scheme == "https",
            request=request,
            email_template_name="accounts/email/password_reset.txt",
        )


class TOTPCodeForm(forms.Form):
    otp_token = forms.CharField(
        label="Code from your authenticator app",
        min_length=6,
        max_length=8,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}),
    )
