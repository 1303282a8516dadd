"""Performance and leaderboard figures, from hand-made rows whose answers are worked out below."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from bots.models import Bot, Cycle, LLMCall
from tests.api.conftest import make_bot
from tests.books import books_unguarded
from trading.metrics import SECONDS_PER_YEAR, sharpe_ratio
from trading.models import EquitySnapshot, Fill, Order, Position, TradingAccount

pytestmark = pytest.mark.django_db

HOLD = {
    "market_summary": "calm",
    "actions": [{"symbol": "BTC/USD", "action": "hold", "confidence": 0.4, "reasoning": "wait"}],
}


def history(bot: Bot, *, equity_now: Decimal) -> None:
    """Three days of a bot: equity points, three round trips, LLM calls and decided cycles.

    Times are relative to now: the 24h window holds the last two equity points, two of the
    round trips (-100 and +50 gross; fees 5 and 60), one LLM call (0.25) and two cycles.
    """
    now = timezone.now()

    def ago(**span: float) -> datetime:
        return now - timedelta(**span)

    for when, equity in [
        (ago(days=3), 10000),
        (ago(days=2), 11000),
        (ago(hours=36), 9900),
        (ago(hours=12), 10100),
        (ago(hours=1), 10300),
    ]:
        EquitySnapshot.objects.create(bot=bot, time=when, equity=Decimal(equity), cash=Decimal(equity))
    for n, (closed, pnl, fee) in enumerate([(ago(days=2), 1200, 10), (ago(hours=10), -100, 5), (ago(hours=2), 50, 60)]):
        position = Position.objects.create(
            bot=bot,
            symbol="BTC/USD",
            side="long",
            status="closed",
            quantity=Decimal(1),
            entry_price=Decimal(100),
            margin=Decimal(100),
            realized_pnl=Decimal(pnl),
            fees=Decimal(fee),
            opened_at=closed - timedelta(hours=1),
            closed_at=closed,
        )
        order = Order.objects.create(
            bot=bot,
            position=position,
            client_order_id=f"t-{bot.pk}-{n}",
            symbol="BTC/USD",
            side="buy",
            intent="open",
            quantity=Decimal(1),
            status="filled",
            fee=Decimal(fee),
        )
        fill = Fill.objects.create(
            order=order,
            bot=bot,
            symbol="BTC/USD",
            side="buy",
            quantity=Decimal(1),
            price=Decimal(100),
            fee=Decimal(fee),
        )
        with books_unguarded():  # auto_now_add: set the time after
            Fill.objects.filter(pk=fill.pk).update(created_at=closed)
    for when, cost in [(ago(days=2), "1.5"), (ago(hours=2), "0.25")]:
        call = LLMCall.objects.create(bot=bot, provider="openai", model="gpt-4o-mini", cost=Decimal(cost))
        with books_unguarded():  # backdated (auto_now_add)
            LLMCall.objects.filter(pk=call.pk).update(created_at=when)
    for when, error in [
        (ago(days=3), ""),
        (ago(days=2), ""),
        (ago(hours=5), "actions[0]: bad size"),
        (ago(hours=3), ""),
    ]:
        Cycle.objects.create(
            bot=bot, slot=when, started_at=when, status="completed", decision=HOLD, decision_error=error
        )
    # Not decided (a protect cycle and a failed one): not part of the invalid-output rate.
    Cycle.objects.create(bot=bot, slot=ago(hours=4), started_at=ago(hours=4), kind="protect", status="completed")
    Cycle.objects.create(bot=bot, slot=ago(hours=6), started_at=ago(hours=6), status="failed", error="feed down")
    Bot.objects.filter(pk=bot.pk).update(llm_cost_total=Decimal("1.75"))
    TradingAccount.objects.filter(pk=bot.pk).update(cash=equity_now)


def test_performance_all_time(api, user):
    bot = make_bot(owner=user)
    history(bot, equity_now=Decimal(10300))

    p = api.get(f"/api/bots/{bot.pk}/performance/?period=all").json()

    assert Decimal(p["start_equity"]) == 10000 and Decimal(p["equity"]) == 10300
    assert Decimal(p["return_pct"]) == Decimal("3")
    assert Decimal(p["realized_pnl"]) == 1150 and Decimal(p["unrealized_pnl"]) == 0
    assert Decimal(p["total_pnl"]) == 1150
    assert Decimal(p["fees"]) == 75 and Decimal(p["llm_cost"]) == Decimal("1.75")
    assert Decimal(p["net_pnl"]) == Decimal("1073.25")
    # Net of fees: +1190 wins, -105 and -10 lose.
    assert Decimal(p["win_rate"]) == Decimal("33.33") and p["trades"] == 3 and p["fills"] == 3
    # Peak 11000, trough 9900.
    assert Decimal(p["max_drawdown_pct"]) == Decimal("10")
    # Sharpe over the recorded per-cycle points only (not the start or the live mark).
    equities = [Decimal(v) for v in (10000, 11000, 9900, 10100, 10300)]
    assert Decimal(p["sharpe"]) == sharpe_ratio(equities, SECONDS_PER_YEAR / 180)
    assert p["cycles"] == 4 and p["invalid_outputs"] == 1 and Decimal(p["invalid_output_rate"]) == 25
    assert [Decimal(point["equity"]) for point in p["equity_series"]] == [10000, 11000, 9900, 10100, 10300]


def test_performance_last_24h(api, user):
    bot = make_bot(owner=user)
    history(bot, equity_now=Decimal(10300))

    p = api.get(f"/api/bots/{bot.pk}/performance/?period=24h").json()

    # The period starts from the last equity point before it (9900, 36 hours ago).
    assert Decimal(p["start_equity"]) == 9900
    assert Decimal(p["return_pct"]) == Decimal("4.0404")
    assert Decimal(p["realized_pnl"]) == -50 and Decimal(p["fees"]) == 65
    assert Decimal(p["llm_cost"]) == Decimal("0.25") and Decimal(p["net_pnl"]) == Decimal("-115.25")
    assert Decimal(p["win_rate"]) == 0 and p["trades"] == 2
    assert Decimal(p["max_drawdown_pct"]) == 0
    assert p["cycles"] == 2 and Decimal(p["invalid_output_rate"]) == 50
    assert [Decimal(point["equity"]) for point in p["equity_series"]] == [10100, 10300]
    assert api.get(f"/api/bots/{bot.pk}/performance/?period=1y").status_code == 400


def test_long_equity_series_are_thinned(api, user, settings):
    settings.PERFORMANCE_MAX_POINTS = 10
    bot = make_bot(owner=user)
    start = timezone.now() - timedelta(hours=5)
    for i in range(25):
        EquitySnapshot.objects.create(
            bot=bot, time=start + timedelta(minutes=i), equity=Decimal(10000 + i), cash=Decimal(0)
        )

    series = api.get(f"/api/bots/{bot.pk}/performance/").json()["equity_series"]

    assert len(series) == 10
    assert Decimal(series[0]["equity"]) == 10000 and Decimal(series[-1]["equity"]) == 10024


def test_a_bot_without_history(api, user):
    bot = make_bot(owner=user)

    p = api.get(f"/api/bots/{bot.pk}/performance/?period=7d").json()

    assert Decimal(p["equity"]) == 10000 and Decimal(p["return_pct"]) == 0
    assert p["win_rate"] is None and p["sharpe"] is None and p["invalid_output_rate"] is None
    assert p["equity_series"] == []


def test_leaderboard_ranks_the_users_bots_with_baselines(api, user, other_user):
    winner = make_bot(owner=user, name="gpt", provider="openai", model="gpt-4o-mini")
    history(winner, equity_now=Decimal(10300))
    baseline = make_bot(owner=user, name="hold", model="hold")
    loser = make_bot(owner=user, name="ema", model="ema_rsi")
    TradingAccount.objects.filter(pk=loser.pk).update(cash=Decimal(9500))
    make_bot(owner=other_user, name="foreign")

    rows = api.get("/api/leaderboard/").json()

    assert [(r["rank"], r["name"]) for r in rows] == [(1, "gpt"), (2, "hold"), (3, "ema")]
    first, second, third = rows
    assert not first["is_baseline"] and second["is_baseline"] and third["is_baseline"]
    assert Decimal(first["return_pct"]) == 3 and Decimal(third["return_pct"]) == -5
    assert Decimal(first["net_pnl"]) == Decimal("1073.25") and Decimal(first["invalid_output_rate"]) == 25
    assert Decimal(first["max_drawdown_pct"]) == 10 and Decimal(first["win_rate"]) == Decimal("33.33")
    assert first["trades"] == 3 and Decimal(first["llm_cost"]) == Decimal("1.75")
    assert first["quote_currency"] == "USD"  # the currency of equity and PnL
    assert second["provider_name"] == "Rule baseline (no LLM)"
    assert second["invalid_output_rate"] is None and second["sharpe"] is None
    assert baseline.pk == second["bot_id"]


def test_leaderboard_queries_do_not_grow_with_bots(api, user, django_assert_max_num_queries):
    for n in range(12):
        history(make_bot(owner=user, name=f"bot-{n}"), equity_now=Decimal(10000 + n))

    with django_assert_max_num_queries(14):
        rows = api.get("/api/leaderboard/?period=7d").json()

    assert len(rows) == 12 and rows[0]["name"] == "bot-11"


def test_a_bot_younger_than_the_period_counts_from_its_starting_capital(api, user):
    # Its first snapshot already holds the first trade's fee: the period must start before it,
    # so 24h and all-time agree for a bot created an hour ago.
    bot = make_bot(owner=user)
    EquitySnapshot.objects.create(
        bot=bot, time=timezone.now() - timedelta(hours=1), equity=Decimal("9990"), cash=Decimal(0)
    )
    day = api.get(f"/api/bots/{bot.pk}/performance/?period=24h").json()
    ever = api.get(f"/api/bots/{bot.pk}/performance/?period=all").json()
    assert Decimal(day["start_equity"]) == Decimal(ever["start_equity"]) == 10000
    assert day["return_pct"] == ever["return_pct"] and day["max_drawdown_pct"] == ever["max_drawdown_pct"]
