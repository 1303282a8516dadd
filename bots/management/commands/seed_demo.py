from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

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


class Command(BaseCommand):
    help = "Create the demo user and a handful of baseline bots on the recorded markets, and start them (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-start", action="store_true", help="create the bots without starting them")

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        with transaction.atomic():
            user, created = user_model.objects.get_or_create(
                username=DEMO_USERNAME, defaults={"email": "demo@example.com", "is_staff": True, "is_superuser": True}
            )
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save()
            made = []
            for spec in DEMO_BOTS:
                if Bot.objects.filter(owner=user, name=spec["name"]).exists():
                    continue
                data = {
                    "provider": BASELINE,
                    "interval_seconds": settings.DEMO_INTERVAL_SECONDS,
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
