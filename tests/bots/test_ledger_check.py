"""The ledger check: after random trading through the real paper path the books agree; a row
corrupted with raw SQL (the append-only guard lifted for the test) is named by the check."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import bots.cycle
from bots.cycle import run_cycle
from bots.decisions import DecisionContext, DecisionOutcome, validate_decision
from bots.models import Bot
from bots.services import bot_pause, bot_start, bot_stop
from tests.books import books_unguarded
from tests.factories import SLOT, BotFactory, UserFactory
from trading.ledger import ledger_check
from trading.models import Fill, Position, TradingAccount
from trading.services import account_adjust

pytestmark = pytest.mark.django_db

INTERVAL = 180

# --- A decision maker that plays a script of decisions ----------------------------------------------


def _action(
    kind: str, *, size: int = 0, leverage: int = 1, sl: int | None = None, tp: int | None = None
) -> dict[str, Any]:
    return {"kind": kind, "size": size, "leverage": leverage, "sl": sl, "tp": tp}


# Per symbol: hold, close, or open long/short with a size (% of equity as margin), a leverage and
# optional stop-loss / take-profit distances (tenths of a percent of the price).
distances = st.one_of(st.none(), st.integers(min_value=2, max_value=150))
opens = st.builds(
    _action,
    st.sampled_from(["open_long", "open_short"]),
    size=st.integers(min_value=1, max_value=60),
    leverage=st.integers(min_value=1, max_value=50),  # up to liquidations
    sl=distances,
    tp=distances,
)
actions = st.one_of(st.just(_action("hold")), st.just(_action("close")), opens, opens, opens)
# Between two cycles the owner may pause or resume the bot, an operator may correct its cash.
commands = st.sampled_from(["none", "none", "none", "pause", "start", "adjust"])
steps = st.lists(st.tuples(actions, actions, commands), min_size=3, max_size=20)


class Scripted:
    """Plays one action per symbol per cycle, priced against the cycle's own market."""

    provider, model = "baseline", "scripted"

    def __init__(self, script: Iterator[tuple[dict[str, Any], ...]]) -> None:
        self.script = script

    def decide(self, ctx: DecisionContext) -> DecisionOutcome:
        planned = next(self.script, ())
        prices = {s: ctx.snapshot.markets[s].price for s in ctx.symbols}
        raw = []
        for symbol, step in zip(ctx.symbols, planned, strict=False):
            price = prices[symbol]
            action: dict[str, Any] = {"symbol": symbol, "action": step["kind"], "reasoning": "scripted"}
            if step["kind"].startswith("open"):
                long = step["kind"] == "open_long"
                action.update(size_pct=Decimal(step["size"]), leverage=Decimal(step["leverage"]))
                if step["sl"] is not None:
                    action["stop_loss"] = price * (1 - Decimal(step["sl"]) / 1000 * (1 if long else -1))
                if step["tp"] is not None:
                    action["take_profit"] = price * (1 + Decimal(step["tp"]) / 1000 * (1 if long else -1))
            raw.append(action)
        decision = validate_decision({"market_summary": "scripted", "actions": raw}, symbols=ctx.symbols, prices=prices)
        return DecisionOutcome(decision=decision, prompt_version="scripted-1")


def trade(bot: Bot, plan: list[tuple[dict[str, Any], dict[str, Any], str]], *, operator: Any) -> None:
    """Run the plan through the live cycle (replay market, risk manager, paper executor, books)."""
    for index, (_, _, command) in enumerate(plan):
        slot = SLOT + timedelta(seconds=INTERVAL * index)
        cycle = run_cycle(bot_id=bot.pk, slot=slot)
        assert cycle.status in ("completed", "skipped"), cycle.error
        bot.refresh_from_db()
        if command == "pause" and bot.status == Bot.Status.ACTIVE:
            bot_pause(bot=bot)
        elif command == "start" and bot.status == Bot.Status.PAUSED:
            bot_start(bot=bot)
        elif command == "adjust":
            cash = TradingAccount.objects.get(pk=bot.pk).cash
            amount = min(Decimal("25.5"), (cash / 2).quantize(Decimal("1e-12"))) * (1 if index % 2 else -1)
            if amount:
                account_adjust(bot_id=bot.pk, amount=amount, reason="scripted correction", user_id=operator.pk)


@pytest.fixture(autouse=True)
def _high_leverage_allowed(settings: Any) -> None:
    settings.BOT_MAX_LEVERAGE = Decimal(50)  # the operator's cap raised: random trading up to liquidations


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> dict[int, Scripted]:
    makers: dict[int, Scripted] = {}
    real = bots.cycle.get_decision_maker
    monkeypatch.setattr(bots.cycle, "get_decision_maker", lambda bot: makers.get(bot.pk) or real(bot))
    return makers


LIMITS = {
    "max_trades_per_day": 1000,
    "max_position_pct": Decimal(60),
    "max_leverage": Decimal(50),
    "max_exposure_pct": Decimal(1000),
    "max_drawdown_pct": Decimal(100),
    "daily_loss_limit_pct": Decimal(100),
}


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(perp=steps, spot=steps, stop_at_end=st.booleans())
def test_random_trading_leaves_books_the_check_finds_nothing_in(
    scripted: dict[int, Scripted], perp: list[Any], spot: list[Any], stop_at_end: bool
) -> None:
    operator = UserFactory(is_superuser=True, is_staff=True)
    perpetual = BotFactory(
        name="perp",
        model="hold",
        exchange="binanceusdm",
        symbols=["XRP/USDT:USDT"],
        timeframe="5m",
        start=True,
        **LIMITS,
    )
    spot_bot = BotFactory(
        name="spot",
        model="hold",
        exchange="binance",
        symbols=["ETH/BTC", "ADA/BTC"],
        timeframe="5m",
        starting_capital=Decimal(1),
        owner=perpetual.owner,
        start=True,
        **LIMITS,
    )
    for bot, plan in ((perpetual, perp), (spot_bot, spot)):
        scripted[bot.pk] = Scripted(iter([(a, b) for a, b, _ in plan]))
        trade(bot, plan, operator=operator)
        if stop_at_end:
            bot_stop(bot=bot)

    for reason in Position.objects.filter(bot__in=[perpetual, spot_bot]).values_list("close_reason", flat=True):
        event(f"position closed by {reason or '-'}")
    for bot in (perpetual, spot_bot):
        report = ledger_check(bot_id=bot.pk, capital=bot.starting_capital, currency=bot.quote_currency)
        assert report.discrepancies == [], report.discrepancies
        assert report.equity_points >= len(perp if bot is perpetual else spot) - 1
    out = StringIO()
    call_command("ledger_check", str(perpetual.pk), str(spot_bot.pk), stdout=out)
    assert "the books of 2 bot(s) agree" in out.getvalue()


# --- Corruption: the check names what a raw write broke -------------------------------------------


@pytest.fixture
def books(scripted: dict[int, Scripted]) -> Bot:
    """A perpetual bot that opened, closed, opened again (short) and holds that position."""
    bot = BotFactory(
        name="corrupted",
        model="hold",
        exchange="binanceusdm",
        symbols=["XRP/USDT:USDT"],
        timeframe="5m",
        **LIMITS,
        start=True,
    )
    plan = [
        (_action("open_long", size=20, leverage=3), _action("hold"), "none"),
        (_action("hold"), _action("hold"), "none"),
        (_action("close"), _action("hold"), "none"),
        (_action("open_short", size=10, leverage=2), _action("hold"), "none"),
        (_action("hold"), _action("hold"), "none"),
    ]
    scripted[bot.pk] = Scripted(iter([(a, b) for a, b, _ in plan]))
    trade(bot, plan, operator=UserFactory(is_superuser=True))
    assert Position.objects.filter(bot=bot, status="closed").count() == 1
    assert Position.objects.filter(bot=bot, status="open").count() == 1
    assert ledger_check(bot_id=bot.pk, capital=bot.starting_capital).discrepancies == []
    return bot


def corrupt(sql: str, *params: Any) -> None:
    with books_unguarded(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def found(bot: Bot) -> list[str]:
    return ledger_check(bot_id=bot.pk, capital=bot.starting_capital, currency="USDT").discrepancies


def test_cash_changed_behind_the_books_is_named(books: Bot) -> None:
    corrupt("UPDATE trading_tradingaccount SET cash = cash + 100 WHERE bot_id = %s", books.pk)
    (problem,) = found(books)
    assert problem.startswith("cash is ") and problem.endswith("off by 100 USDT")


def test_a_fill_changed_is_named(books: Bot) -> None:
    fill = Fill.objects.filter(bot=books).order_by("created_at").first()
    corrupt("UPDATE trading_fill SET quantity = quantity * 2 WHERE id = %s", fill.pk)
    problems = found(books)
    assert any(
        p.startswith(f"position {fill.order.position_id} (long XRP/USDT:USDT, closed): quantity is ") for p in problems
    )
    assert any(p.startswith(f"order {fill.order_id} ") and "filled quantity" in p for p in problems)


def test_a_deleted_fill_is_named(books: Bot) -> None:
    closing = Fill.objects.filter(bot=books, order__intent="close").get()
    corrupt("DELETE FROM trading_fill WHERE id = %s", closing.pk)
    problems = found(books)
    assert (
        f"position {closing.order.position_id} (long XRP/USDT:USDT, closed) is closed but has no closing fill"
        in problems
    )
    assert any("fees is" in p for p in problems)  # its exit fee is gone from the fills


def test_a_position_wiped_is_named(books: Bot) -> None:
    held = Position.objects.get(bot=books, status="open")
    corrupt("UPDATE trading_position SET margin = 0 WHERE id = %s", held.pk)
    problems = found(books)
    assert any(p.startswith("cash is ") and "margin held 0 " in p for p in problems)
    assert any(p.startswith("equity point ") and ": equity is " in p for p in problems)


def test_an_equity_point_rewritten_is_named(books: Bot) -> None:
    last = books.equity_snapshots.order_by("-time").first()
    corrupt("UPDATE trading_equitysnapshot SET equity = equity + 1 WHERE id = %s", last.pk)
    (problem,) = found(books)
    assert problem.startswith(f"equity point {last.pk} at ") and "off by 1 USDT" in problem


def test_the_command_exits_1_naming_each_discrepancy(books: Bot) -> None:
    corrupt("UPDATE trading_tradingaccount SET cash = cash - 7 WHERE bot_id = %s", books.pk)
    out = StringIO()
    with pytest.raises(CommandError, match=r"^1 discrepancy in the books of 1 bot\(s\)"):
        call_command("ledger_check", books.name, stdout=out)
    assert f"bot {books.pk} corrupted: cash is " in out.getvalue()


def test_the_command_notices_a_disabled_guard(books: Bot) -> None:
    out = StringIO()
    with books_unguarded(), pytest.raises(CommandError):
        call_command("ledger_check", stdout=out)
    assert "the append-only guard is missing or disabled: ledger_guard_trading_order_update" in out.getvalue()
