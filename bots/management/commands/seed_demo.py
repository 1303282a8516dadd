from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from bots import rules
from bots.models import Bot
from bots.providers import BASELINE
from bots.services import bot_create, bot_start

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-trader-2026"

# Baselines across the bundled recorded markets (marketdata/data). Capital is in each market's
# quote currency.
DEMO_BOTS: list[dict[str, Any]] = [
    {"name": "BTC · EMA/RSI", "model": "ema_rsi", "exchange": "coinbase", "symbols": ["BTC/USD"], "timeframe": "1h"},
    {
        "name": "BTC · buy & hold",
        "model": "buy_and_hold",
        "exchange": "coinbase",
        "symbols": ["BTC/USD"],
        "timeframe": "1h",
    },
    {"name": "BTC · hold", "model": "hold", "exchange": "coinbase", "symbols": ["BTC/USD"], "timeframe": "1h"},
    {
        "name": "XRP perp · EMA/RSI",
        "model": "ema_rsi",
        "exchange": "binanceusdm",
        "symbols": ["XRP/USDT:USDT"],
        "timeframe": "5m",
        "max_leverage": Decimal(3),
    },
    {
        "name": "XRP perp · buy & hold",
        "model": "buy_and_hold",
        "exchange": "binanceusdm",
        "symbols": ["XRP/USDT:USDT"],
        "timeframe": "5m",
    },
    {
        "name": "ETH+ADA · EMA/RSI",
        "model": "ema_rsi",
        "exchange": "binance",
        "symbols": ["ETH/BTC", "ADA/BTC"],
        "timeframe": "5m",
        "starting_capital": Decimal(1),
    },
]


ADMIN_USERNAME = "admin"


class Command(BaseCommand):
    help = (
        "Development only (DEBUG): the demo user (not staff: its password is published) with a handful of "
        "baseline bots on the recorded markets, started, and an admin account with a generated password "
        "printed once (idempotent)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-start", action="store_true", help="create the bots without starting them")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            # The demo login's password is in the README: never on a deployment.
            raise CommandError(
                "seed_demo runs only with DEBUG=true (its demo user has a published password); "
                "on a deployment create accounts with `manage.py create_admin` and the API"
            )
        user_model = get_user_model()
        with transaction.atomic():
            user, created = user_model.objects.get_or_create(
                username=DEMO_USERNAME, defaults={"email": "demo@example.com"}
            )
            if created:
                user.set_password(DEMO_PASSWORD)
            # Earlier versions made the demo user a superuser: with a published password, it is
            # an ordinary user now (the admin account is separate).
            user.is_staff = user.is_superuser = False
            user.save()
            made = []
            for spec in DEMO_BOTS:
                if Bot.objects.filter(owner=user, name=spec["name"]).exists():
                    continue
                data = {
                    "provider": BASELINE,
                    # Never below the platform's minimum (an operator's BOT_MIN_INTERVAL_SECONDS).
                    "interval_seconds": max(settings.DEMO_INTERVAL_SECONDS, rules.min_interval_seconds()),
                    "starting_capital": Decimal(10000),
                    "max_trades_per_day": 500,
                    # The replay runs days of market per hour of wall clock, so the breakers
                    # measured per real UTC day would pause the demo within minutes.
                    "daily_loss_limit_pct": Decimal(50),
                    "max_drawdown_pct": Decimal(60),
                    **spec,
                }
                made.append(bot_create(owner=user, data=data))
        if not options["no_start"]:
            for bot in made:
                bot_start(bot=bot)
        self.stdout.write(
            self.style.SUCCESS(f"demo ready: {len(made)} new bot(s); log in as {DEMO_USERNAME} / {DEMO_PASSWORD}")
        )
        self._admin()

    def _admin(self) -> None:
        from accounts.services import AdminExists, admin_create

        try:
            _admin, password = admin_create(username=ADMIN_USERNAME)
        except AdminExists:
            self.stdout.write(
                f"admin account: {ADMIN_USERNAME} (its password was printed when it was created; "
                "`manage.py create_admin --reset-password` makes a new one)"
            )
            return
        self.stdout.write(
            self.style.SUCCESS(f"admin login: {ADMIN_USERNAME} / {password}")
            + " (shown once: store it now; `manage.py create_admin --reset-password` makes a new one)"
        )
