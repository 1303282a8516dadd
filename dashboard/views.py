"""The dashboard's pages: server-rendered first paint, then kept live by the page's JS module
over the WebSocket streams (alerts.consumers) and the API."""

from __future__ import annotations

import math
from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse_lazy
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.generic import RedirectView
from rest_framework.request import Request

from accounts import services as accounts
from accounts.forms import PasswordResetForm, TOTPCodeForm
from alerts.models import Alert
from bots import performance, selectors
from bots.providers import BASELINE
from core.api import AuthThrottle
from dashboard.forms import LoginForm
from dashboard.templatetags.money import price_decimals
from trading.models import EquitySnapshot

RECENT_ALERTS = 10


def _common(request: HttpRequest) -> dict[str, Any]:
    return {
        # Flower controls the workers (and shows every task's arguments): linked for staff only.
        "flower_url": settings.FLOWER_URL if request.user.is_staff else "",
        "unread_alerts": Alert.objects.filter(owner_id=request.user.pk, read=False).count(),
    }


class DashboardLoginView(LoginView):
    """Django's login view, throttled like the API's logins: the same rate (`API_THROTTLE_AUTH`)
    and the same count per client address, so the two together allow no more password guesses."""

    template_name = "dashboard/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {**super().get_context_data(**kwargs), "registration_open": accounts.registration_allowed()}

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        throttle = AuthThrottle()
        if not throttle.allow_request(Request(request), self):
            return self._throttled(throttle.wait())
        return super().post(request, *args, **kwargs)

    def _throttled(self, wait: float | None) -> HttpResponse:
        seconds = max(1, math.ceil(wait or 0))
        # An unbound form: a bound one would check the password when the page shows its errors.
        form = self.get_form_class()(self.request, initial={"username": self.request.POST.get("username", "")})
        context = self.get_context_data(
            form=form,
            throttled=(
                f"Too many login attempts from your address. Try again in {seconds} "
                f"second{'' if seconds == 1 else 's'}."
            ),
        )
        response = self.render_to_response(context, status=429)
        response["Retry-After"] = str(seconds)
        return response


@login_required
@ensure_csrf_cookie  # the page's JS sends the cookie's token with its POSTs (start/pause/stop)
def bots_page(request: HttpRequest) -> HttpResponse:
    rows = [
        {"bot": bot, "account": account, "pnl": selectors.pnl_of(bot=bot, account=account)}
        for bot, account in selectors.bots_overview(user=request.user)
    ]
    alerts = (
        Alert.objects.filter(owner_id=request.user.pk).select_related("bot").order_by("-created_at")[:RECENT_ALERTS]
    )
    return render(request, "dashboard/bots.html", {"rows": rows, "alerts": alerts, "page": "bots", **_common(request)})


@login_required
@ensure_csrf_cookie
def bot_page(request: HttpRequest, bot_id: int) -> HttpResponse:
    bot = selectors.with_market_time(selectors.bots_of(user=request.user)).filter(pk=bot_id).first()
    if bot is None:
        # Another user's bot looks exactly like a missing one.
        raise Http404("no such bot")
    account = selectors.bot_accounts(bots=[bot])[bot.pk]
    # Each market's price decimals (its chart's axis, its positions' prices), from its last close
    # the bot has seen; None before any candle, when the page derives them from the first ones.
    markets: list[dict[str, Any]] = []
    for symbol in bot.symbols:
        last = selectors.candles_for(bot=bot, symbol=symbol, limit=1)
        markets.append({"symbol": symbol, "price_decimals": price_decimals(last[0].close) if last else None})
    context = {
        "bot": bot,
        "account": account,
        "markets": markets,
        # The first market is the one the price chart shows first.
        "has_candles": bool(markets) and markets[0]["price_decimals"] is not None,
        "has_equity": EquitySnapshot.objects.filter(bot=bot).exists(),
        "pnl": selectors.pnl_of(bot=bot, account=account),
        "page": "bot",
        "is_baseline": bot.provider == BASELINE,
        **_common(request),
    }
    return render(request, "dashboard/bot.html", context)


@login_required
@ensure_csrf_cookie
def leaderboard_page(request: HttpRequest) -> HttpResponse:
    board = performance.leaderboard(user=request.user, period="all")
    return render(request, "dashboard/leaderboard.html", {"board": board, "page": "leaderboard", **_common(request)})


class _TopBar:
    """The top bar's figures (unread alerts, staff's Flower link) on Django's auth views too."""

    request: HttpRequest

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context: dict[str, Any] = super().get_context_data(**kwargs)  # type: ignore[misc]
        return {**_common(self.request), "page": "account", **context}


class _ThrottledPost:
    """POSTs of a form that checks a password or sends a mail count in the login throttle
    (API_THROTTLE_AUTH per address, shared with the logins): no guessing, no mail bombing."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        throttle = AuthThrottle()
        if not throttle.allow_request(Request(request), self):
            seconds = max(1, math.ceil(throttle.wait() or 0))
            context = self.get_context_data(  # type: ignore[attr-defined]
                throttled=f"Too many attempts from your address. Try again in {seconds} second{'' if seconds == 1 else 's'}."
            )
            response = self.render_to_response(context, status=429)  # type: ignore[attr-defined]
            response["Retry-After"] = str(seconds)
            return response  # type: ignore[no-any-return]
        return super().post(request, *args, **kwargs)  # type: ignore[misc,no-any-return]


class PasswordChangeView(_TopBar, _ThrottledPost, auth_views.PasswordChangeView):
    """Change the password (the current one first). Other sessions and every API token issued
    before end; this session stays."""

    template_name = "dashboard/password_change.html"
    success_url = reverse_lazy("dashboard:password-change-done")


class PasswordChangeDoneView(_TopBar, auth_views.PasswordChangeDoneView):
    template_name = "dashboard/password_change_done.html"


class PasswordResetView(_TopBar, _ThrottledPost, auth_views.PasswordResetView):
    """Ask for a reset mail; the same answer whether or not the address has an account."""

    template_name = "dashboard/password_reset.html"
    form_class = PasswordResetForm
    success_url = reverse_lazy("dashboard:password-reset-sent")

    def form_valid(self, form: Any) -> HttpResponse:
        form.save_for(self.request)
        return HttpResponseRedirect(self.get_success_url())


class PasswordResetSentView(_TopBar, auth_views.PasswordResetDoneView):
    template_name = "dashboard/password_reset_sent.html"


class PasswordResetConfirmView(_TopBar, auth_views.PasswordResetConfirmView):
    template_name = "dashboard/password_reset_confirm.html"
    success_url = reverse_lazy("dashboard:password-reset-complete")


class PasswordResetCompleteView(_TopBar, auth_views.PasswordResetCompleteView):
    template_name = "dashboard/password_reset_complete.html"


@login_required
def account_page(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    device = accounts.totp_device_of(user) if user.is_staff else None
    return render(
        request, "dashboard/account.html", {"page": "account", "has_totp": device is not None, **_common(request)}
    )


@login_required
def two_factor_page(request: HttpRequest) -> HttpResponse:
    """Staff's authenticator app (TOTP) for the admin: add one (scan, then confirm a code), or
    remove it (with a current code)."""
    user: Any = request.user
    if not user.is_staff:
        raise PermissionDenied("Two-factor authentication is for the admin's staff.")
    context: dict[str, Any] = {"page": "account", "required": settings.ADMIN_REQUIRE_TOTP, **_common(request)}
    device = accounts.totp_device_of(user)
    pending = accounts.totp_pending(user=user)
    form = TOTPCodeForm()
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "start":
            pending = accounts.totp_start(user=user)
        elif action in ("confirm", "remove"):
            form = TOTPCodeForm(request.POST)
            if form.is_valid():
                token = form.cleaned_data["otp_token"]
                if action == "confirm":
                    confirmed = accounts.totp_confirm(user=user, token=token)
                    if confirmed is not None:
                        from django_otp import login as otp_login

                        otp_login(request, confirmed)  # this session passed the second factor
                        return redirect("dashboard:two-factor")
                elif device is not None and accounts.totp_verify(user=user, token=token) is not None:
                    accounts.totp_remove(user=user)
                    return redirect("dashboard:two-factor")
                form.add_error("otp_token", "That code is not valid.")
    if pending is not None:
        import base64

        import segno

        context["qr_svg"] = segno.make(pending.config_url, error="m").svg_inline(
            scale=4, dark="#000", light="#fff", border=3
        )
        context["secret"] = base64.b32encode(pending.bin_key).decode()
    context.update(device=device, pending=pending, form=form)
    return render(request, "dashboard/two_factor.html", context)


class FaviconView(RedirectView):
    """/favicon.ico, which browsers and tools ask for whatever a page links to: the SVG icon."""

    permanent = False  # a 301 is cached for good: the icon could never move again

    def get_redirect_url(self, *args: Any, **kwargs: Any) -> str:
        return static("dashboard/favicon.svg")
