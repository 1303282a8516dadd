from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib.auth.forms import AuthenticationForm

from accounts.services import user_authenticate


class LoginForm(AuthenticationForm):
    """Log in with the email address (or the username) and the password."""

    username = forms.CharField(
        label="Email or username",
        max_length=254,
        widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "username"}),
    )

    def clean(self) -> dict[str, Any]:
        login = (self.cleaned_data.get("username") or "").strip()
        password = self.cleaned_data.get("password")
        if login and password:
            user = user_authenticate(request=self.request, login=login, password=password)
            if user is None:
                raise self.get_invalid_login_error()
            # The project's user model is Django's; the helper is typed for any user model.
            self.confirm_login_allowed(cast(Any, user))
            self.user_cache = cast(Any, user)
        return self.cleaned_data
