"""Logging in with an email address or a username: one rule for the API and the dashboard."""

from __future__ import annotations

from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.http import HttpRequest


def authenticate_login(*, request: HttpRequest | None, login: str, password: str) -> AbstractBaseUser | None:
    """The user for an email (or username) and password, or None; shared by the API and the login page."""
    username = login
    if "@" in login:
        match = (
            get_user_model()
            .objects.filter(email__iexact=login)
            .order_by("pk")
            .values_list("username", flat=True)
            .first()
        )
        if match is not None:
            username = match
    user = authenticate(request, username=username, password=password)
    return None if user is None or isinstance(user, AnonymousUser) else user
