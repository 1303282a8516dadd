"""The dashboard's pages: server-rendered first paint, then kept live by the page's JS module
over the WebSocket streams (alerts.consumers) and the API."""

from __future__ import annotations

import math
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.generic import RedirectView
from rest_framework.request import Request

from alerts.models import Alert
from bots import selectors
from bots.models import Bot
from dashboard.forms import LoginForm
from dashboard.templatetags.money import price_decimals
from trading.models import EquitySnapshot
from tradingagent.api import AuthThrottle

RECENT_ALERTS = 10


def _common(request: HttpRequest) -> dict[str, Any]:
    return {
        "flower_url": settings.FLOWER_URL,
        # The feed's alerts only: one a rule sent elsewhere (email, a test message) is not unread here.
        "unread_alerts": Alert.objects.filter(owner_id=request.user.pk, in_app=True, read=False).count(),
    }


class DashboardLoginView(LoginView):
    """Django's login view, throttled like the API's logins: the same rate (`API_THROTTLE_AUTH`)
    and the same count per client address, so the two together allow no more password guesses."""

    template_name = "dashboard/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True

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
        Alert.objects.filter(owner_id=request.user.pk, in_app=True)
        .select_related("bot")
        .order_by("-created_at")[:RECENT_ALERTS]
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
        "is_baseline": bot.provider == Bot.Provider.BASELINE,
        **_common(request),
    }
    return render(request, "dashboard/bot.html", context)


@login_required
@ensure_csrf_cookie
def leaderboard_page(request: HttpRequest) -> HttpResponse:
    rows = selectors.leaderboard(user=request.user, period="all")
    return render(request, "dashboard/leaderboard.html", {"rows": rows, "page": "leaderboard", **_common(request)})


class FaviconView(RedirectView):
    """/favicon.ico, which browsers and tools ask for whatever a page links to: the SVG icon."""

    permanent = False  # a 301 is cached for good: the icon could never move again

    def get_redirect_url(self, *args: Any, **kwargs: Any) -> str:
        return static("dashboard/favicon.svg")
