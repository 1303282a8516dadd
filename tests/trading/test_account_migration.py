"""The data migration that moved a bot's account (cash and the breakers' marks) from the bot's row
to trading.TradingAccount: every bot gets its account with the same figures, and back again."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("bots", "0004_bot_limits"), ("trading", "0001_initial")]
AFTER = [("bots", "0005_account_moved_to_trading"), ("trading", "0002_trading_account")]


def migrate(targets: list[tuple[str, str]]):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_accounts_move_to_trading_and_back():
    owner = UserFactory()
    try:
        old = migrate(BEFORE)
        Bot = old.get_model("bots", "Bot")
        bot = Bot.objects.create(
            owner_id=owner.pk,
            name="old",
            model="hold",
            symbols=["BTC/USD"],
            cash=Decimal("1234.5"),
            peak_equity=Decimal("2000"),
            day_start_equity=Decimal("1500"),
            day_start_date=date(2026, 1, 5),
            interval_seconds=180,
        )

        new = migrate(AFTER)
        account = new.get_model("trading", "TradingAccount").objects.get(pk=bot.pk)
        assert (account.owner_id, account.cash, account.peak_equity, account.day_start_equity) == (
            owner.pk,
            Decimal("1234.5"),
            Decimal("2000"),
            Decimal("1500"),
        )
        assert account.day_start_date == date(2026, 1, 5)
        assert not hasattr(new.get_model("bots", "Bot")(), "cash")

        back = migrate(BEFORE)
        assert back.get_model("bots", "Bot").objects.get(pk=bot.pk).cash == Decimal("1234.5")
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
