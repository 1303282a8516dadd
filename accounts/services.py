"""Account services: registration, login by email or username, password reset mails, staff's
authenticator (TOTP) and the admin account. Keyword-only, used by the API and the dashboard alike."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import HttpRequest
from django.template.loader import render_to_string

from accounts.tasks import send_email

logger = logging.getLogger(__name__)

User = get_user_model()


class RegistrationClosed(Exception):
    """ALLOW_REGISTRATION is off: accounts are made by the operator."""


def registration_allowed() -> bool:
    """Whether strangers may create accounts (ALLOW_REGISTRATION; the API and the sign-up page ask here)."""
    return bool(settings.ALLOW_REGISTRATION)


def normalize_email(email: str) -> str:
    return User.objects.normalize_email(email.strip()).lower()


def site_url(request: HttpRequest | None) -> str:
    """The site's origin for links in mails: SITE_URL, else the request's (host checked by ALLOWED_HOSTS)."""
    if settings.SITE_URL:
        return str(settings.SITE_URL)
    if request is not None:
        return f"{request.scheme}://{request.get_host()}"
    return ""


def mail_on_commit(*, to: str, template: str, context: dict[str, Any]) -> None:
    """Render `accounts/email/<template>.txt` (first line: the subject) and have a worker send it
    once the current transaction has committed."""
    text = render_to_string(f"accounts/email/{template}.txt", context).lstrip()
    subject, _, body = text.partition("\n")
    transaction.on_commit(lambda: send_email.delay(subject=subject.strip(), body=body.lstrip("\n"), to=to))


def user_register(*, email: str, password: str, request: HttpRequest | None = None) -> AbstractBaseUser | None:
    """Create an account (the email is also the username) and return it; None when the address is
    taken, whose owner is told by mail instead. Callers answer both cases alike, so registration
    does not tell a stranger which addresses have accounts. The password is validated before.

    Raises RegistrationClosed when ALLOW_REGISTRATION is off.
    """
    if not registration_allowed():
        raise RegistrationClosed("Registration is closed: ask the operator for an account.")
    email = normalize_email(email)
    taken = Q(email__iexact=email) | Q(username__iexact=email)
    try:
        with transaction.atomic():
            if not User.objects.filter(taken).exists():
                user = User.objects.create_user(username=email, email=email, password=password)
                logger.info("user %s registered", user.pk)
                return user
    except IntegrityError:
        pass  # the same address registered at the same moment: it is taken
    # As much work as creating the account (hashing the password), so the answer takes as long.
    make_password(password)
    owner = User.objects.filter(taken).order_by("pk").first()
    if owner is not None and owner.email and owner.is_active:
        base = site_url(request)
        mail_on_commit(
            to=owner.email,
            template="account_exists",
            context={"login_url": f"{base}/login/", "reset_url": f"{base}/password/reset/", "email": owner.email},
        )
    logger.info("registration for an existing account %s: its owner was told", owner.pk if owner else None)
    return None


def user_authenticate(*, request: HttpRequest | None, login: str, password: str) -> AbstractBaseUser | None:
    """The user for an email (or username) and password, or None. Goes through Django's
    authenticate with the request, so the lockout (django-axes) counts and refuses it like every login."""
    username = login
    if "@" in login:
        match = User.objects.filter(email__iexact=login).order_by("pk").values_list("username", flat=True).first()
        if match is not None:
            username = match
    user = authenticate(request, username=username, password=password)
    return None if user is None or isinstance(user, AnonymousUser) else user


# --- Staff's second factor (TOTP) -------------------------------------------------------------------


def totp_device_of(user: Any) -> Any:
    """The user's confirmed authenticator (django-otp TOTPDevice), or None."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()


def totp_start(*, user: Any) -> Any:
    """A new, unconfirmed authenticator for the user (replacing an earlier unconfirmed one)."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        return TOTPDevice.objects.create(user=user, name="authenticator app", confirmed=False)


def totp_pending(*, user: Any) -> Any:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    return TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()


def totp_confirm(*, user: Any, token: str) -> Any:
    """Confirm the pending authenticator with a code from the app; returns the device, or None if
    the code is wrong. A confirmed one replaces any earlier device."""
    device = totp_pending(user=user)
    if device is None or not device.verify_token(token.strip()):
        return None
    with transaction.atomic():
        type(device).objects.filter(user=user, confirmed=True).exclude(pk=device.pk).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
    logger.info("user %s confirmed an authenticator", user.pk)
    return device


def totp_remove(*, user: Any) -> None:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    TOTPDevice.objects.filter(user=user).delete()
    logger.info("user %s removed their authenticator", user.pk)


def totp_verify(*, user: Any, token: str) -> Any:
    """The user's confirmed authenticator if `token` is its current code, else None (django-otp
    throttles repeated wrong codes per device)."""
    device = totp_device_of(user)
    if device is None or not token or not device.verify_token(token.strip()):
        return None
    return device


# --- The admin account --------------------------------------------------------------------------------


class AdminExists(Exception):
    pass


def admin_create(*, username: str, email: str = "", reset_password: bool = False) -> tuple[Any, str]:
    """A superuser with a generated password (returned, to be shown once; only its hash is kept).

    Raises AdminExists if the username is taken and `reset_password` is not set; with it, the
    existing account gets a new generated password (and stays or becomes a superuser).
    """
    password = secrets.token_urlsafe(18)
    with transaction.atomic():
        user = User.objects.select_for_update().filter(username=username).first()
        if user is None:
            user = User.objects.create_superuser(username=username, email=email, password=password)
            logger.info("admin account %s created", user.pk)
            return user, password
        if not reset_password:
            raise AdminExists(f"a user named {username!r} exists already")
        user.set_password(password)
        user.is_staff = user.is_superuser = user.is_active = True
        user.save()
        logger.info("admin account %s got a new password", user.pk)
        return user, password
