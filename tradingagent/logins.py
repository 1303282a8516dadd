"""What every login shares: the client's address, one name per account, the rate throttle and the
lockout's answer.

The three logins (the admin, the dashboard's /login/ and the API's token endpoint) all call
`django.contrib.auth.authenticate` with the request, so django-axes (settings: AXES_*) counts their
failures together, per address and per account, and refuses a locked-out login before any password
is checked. The rate throttle (`API_THROTTLE_AUTH`, core.api.AuthThrottle) counts every
attempt per address on top; the Django views use it through `login_throttle_wait`.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from axes.middleware import AxesMiddleware
from django.conf import settings
from django.db.models import Max, Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from core.api import AuthThrottle, error_body


def client_ip(request: HttpRequest) -> str | None:
    """The client's address as the throttles see it: REMOTE_ADDR, or behind `NUM_PROXIES` proxies the
    address the nearest of them appended to X-Forwarded-For (what a client writes there is ignored).
    None when there is no valid address (the lockout then counts per account only)."""
    for candidate in (BaseThrottle().get_ident(request), request.META.get("REMOTE_ADDR")):  # type: ignore[arg-type]
        try:
            return str(ipaddress.ip_address(str(candidate).strip()))
        except ValueError:
            continue
    return None


def login_name(request: HttpRequest, credentials: dict[str, Any] | None) -> str | None:
    """One name per account for the lockout, whether the login used the email or the username."""
    raw = (credentials or {}).get("username")
    if raw is None:
        raw = request.POST.get("username")
    if not raw:
        return None
    name = str(raw).strip()
    if "@" in name:
        from django.contrib.auth import get_user_model

        match = (
            get_user_model()
            .objects.filter(email__iexact=name)
            .order_by("pk")
            .values_list("username", flat=True)
            .first()
        )
        if match is not None:
            return str(match).lower()
    return name.lower()


def lockout_seconds_left(request: HttpRequest, credentials: dict[str, Any] | None) -> int:
    """Seconds until the lockout ends: the cool-off counts from the last failure (of the address or
    of the account), and a failure during the lockout starts it again."""
    from axes.models import AccessAttempt

    ip = getattr(request, "axes_ip_address", None) or client_ip(request)
    name = login_name(request, credentials)
    matching = Q(pk__in=[])
    if ip:
        matching |= Q(ip_address=ip)
    if name:
        matching |= Q(username=name)
    last = AccessAttempt.objects.filter(matching).aggregate(last=Max("attempt_time"))["last"]
    cool_off = settings.AXES_COOLOFF_TIME
    if last is None:
        return int(cool_off.total_seconds())
    return max(1, math.ceil((last + cool_off - timezone.now()).total_seconds()))


def _wait_text(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} second{'' if seconds == 1 else 's'}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minutes"


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: dict[str, Any] | None
) -> HttpResponse:
    """django-axes' answer to a locked-out login (AXES_LOCKOUT_CALLABLE): the API's error format under
    /api/, a page in the admin's or the dashboard's look elsewhere. It never says whether the account
    exists."""
    seconds = lockout_seconds_left(request, credentials)
    message = (
        "Too many failed login attempts from this address or for this account. "
        f"Logins are locked for {_wait_text(seconds)}."
    )
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = JsonResponse(error_body(status_code=429, code="locked_out", message=message), status=429)
    else:
        template = "admin/locked_out.html" if request.path.startswith("/admin/") else "dashboard/locked_out.html"
        response = render(request, template, {"message": message, "title": "Logins locked"}, status=429)
    response["Retry-After"] = str(seconds)
    return response


class LockoutMiddleware(AxesMiddleware):
    """django-axes' middleware, with its async path fixed: axes 8.3 passes the credentials where the
    original response goes, so under daphne (ASGI) the lockout page lost the account's name."""

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        response: HttpResponse = await self.get_response(request)
        if getattr(settings, "AXES_ENABLED", True) and getattr(request, "axes_locked_out", None):
            credentials = getattr(request, "axes_credentials", None)
            response = await sync_to_async(lockout_response, thread_sensitive=True)(request, response, credentials)
        return response


def login_throttle_wait(request: HttpRequest, view: Any = None) -> float | None:
    """None when this login attempt is within the address's rate (API_THROTTLE_AUTH), else the
    seconds to wait. Shares its history with the API's auth endpoints."""
    throttle = AuthThrottle()
    if throttle.allow_request(Request(request), view):
        return None
    return float(throttle.wait() or 1)


def throttled_page(render_page: Callable[[str], HttpResponse], wait: float) -> HttpResponse:
    seconds = max(1, math.ceil(wait))
    response = render_page(f"Too many login attempts from your address. Try again in {_wait_text(seconds)}.")
    response.status_code = 429
    response["Retry-After"] = str(seconds)
    return response
