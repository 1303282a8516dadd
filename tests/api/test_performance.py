"""Performance, leaderboard, analytics and arena figures, from hand-made marks whose answers are
worked out below (and, for Sharpe, checked against empyrical on the same returns)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import empyrical
import numpy as np
import pytest
from django.utils import timezone

from bots.models import Bot, Cycle
from tests.factories import BotFactory
from trading.models import EquitySnapshot, Fill, Order, Position

pytestmark = pytest.mark.django_db

MARKET = datetime(2019, 3, 4, 0, 0, tzinfo=UTC)  # market times of the replayed BTC/USD 1h file


def started(bot: Bot, *, when: datetime | None = None) -> None:
    """A completed trading cycle: the bot counts as started."""
    when = when or timezone.now() - timedelta(days=40)
    Cycle.objects.create(bot=bot, slot=when, started_at=when, status="completed")


def mark(
    bot: Bot,
    *,
    time: datetime,
    market_time: datetime | None,
    equity: float | str | Decimal,
    price: float | str | None = None,
    llm_usd: str = "0",
    llm_quote: str = "0",
    unconverted: str = "0",
) -> EquitySnapshot:
    equity = Decimal(str(equity))
    return EquitySnapshot.objects.create(
        bot=bot,
        time=time,
        market_time=market_time,
        equity=equity,
        cash=equity,
        llm_cost=Decimal(llm_usd),
        llm_cost_quote=Decimal(llm_quote),
        llm_cost_unconverted=Decimal(unconverted),
        prices=None if price is None else {s: str(price) for s in bot.symbols},
    )


def hourly(bot: Bot, equities: list[float], *, prices: list[float] | None = None, start: datetime | None = None):
    """One mark per hour of market time, a minute apart on the platform clock, ending a minute ago."""
    now = timezone.now()
    for i, equity in enumerate(equities):
        mark(
            bot,
            time=start + timedelta(minutes=i) if start else now - timedelta(minutes=len(equities) - i),
            market_time=MARKET + timedelta(hours=i),
            equity=equity,
            price=None if prices is None else prices[i],
        )


def test_performance_on_the_market_time_grid(api, user):
    bot = BotFactory(owner=user)
    started(bot)
    hourly(bot, [10000, 11000, 9900, 10100], prices=[100, 110, 99, 101])
    # The last mark carries the LLM bill so far: 1.75 USD, converted 1:1 (a USD account).
    mark(
        bot,
        time=timezone.now(),
        market_time=MARKET + timedelta(hours=4),
        equity=10300,
        price=103,
        llm_usd="1.75",
        llm_quote="1.75",
    )

    p = api.get(f"/api/bots/{bot.pk}/performance/?period=all").json()

    assert p["quote_currency"] == "USD" and p["grid"] == "1h"
    # From the starting capital through five hourly marks: five periods.
    assert p["periods"] == 5
    assert Decimal(p["start_equity"]) == 10000 and Decimal(p["return_pct"]) == 3
    assert Decimal(p["llm_cost"]) == Decimal("1.75") and Decimal(p["llm_cost_quote"]) == Decimal("1.75")
    assert Decimal(p["net_pnl"]) == Decimal("298.25") and Decimal(p["net_return_pct"]) == Decimal("2.9825")
    # Peak 11000, trough 9900.
    assert Decimal(p["max_drawdown_pct"]) == 10
    # Buy-and-hold of BTC over the same marks: 100 → 103.
    assert Decimal(p["benchmark_return_pct"]) == 3
    assert Decimal(p["excess_return_vs_buy_and_hold_pct"]) == Decimal("-0.0175")
    # Five periods: no Sharpe, no interval, and it says why.
    assert p["sharpe"] is None and p["sharpe_ci"] is None and p["net_return_ci"] is None
    assert p["verdict"] == "fewer than 30 periods: too early to tell"
    assert p["market_start"].startswith("2019-03-04T00:00")
    assert p["market_end"].startswith("2019-03-04T04:00")
    assert [Decimal(point["equity"]) for point in p["equity_series"]] == [10000, 11000, 9900, 10100, 10300]


def test_sharpe_with_enough_periods_matches_empyrical(api, user):
    bot = BotFactory(owner=user)
    started(bot)
    rng = np.random.default_rng(3)
    returns = rng.normal(0.001, 0.01, 60)
    equities = [round(10000 * float(v), 6) for v in np.cumprod(1 + returns)]
    hourly(bot, equities, prices=[100 + i for i in range(60)])

    p = api.get(f"/api/bots/{bot.pk}/performance/").json()

    values = np.array([10000.0, *equities])
    expected = empyrical.sharpe_ratio(values[1:] / values[:-1] - 1, annualization=365 * 24)
    assert p["periods"] == 60
    assert float(p["sharpe"]) == pytest.approx(expected, abs=1e-4)
    assert float(p["sortino"]) == pytest.approx(
        empyrical.sortino_ratio(values[1:] / values[:-1] - 1, annualization=365 * 24), abs=1e-4
    )
    low, high = (float(x) for x in p["sharpe_ci"])
    assert low < float(p["sharpe"]) < high
    low, high = (float(x) for x in p["net_return_ci"])
    assert low < float(p["net_return_pct"]) < high
    assert p["excess_return_ci"] is not None and p["verdict"] in (
        "not distinguishable from buy-and-hold",
        "beats buy-and-hold",
        "trails buy-and-hold",
    )


def test_a_period_starts_from_the_mark_before_it(api, user):
    bot = BotFactory(owner=user)
    started(bot)
    now = timezone.now()
    mark(bot, time=now - timedelta(days=3), market_time=MARKET, equity=10000, price=100)
    mark(bot, time=now - timedelta(hours=36), market_time=MARKET + timedelta(hours=1), equity=9900, price=99)
    mark(bot, time=now - timedelta(hours=12), market_time=MARKET + timedelta(hours=2), equity=10100, price=100)
    mark(bot, time=now - timedelta(hours=1), market_time=MARKET + timedelta(hours=3), equity=10300, price=102)

    p = api.get(f"/api/bots/{bot.pk}/performance/?period=24h").json()

    assert Decimal(p["start_equity"]) == 9900 and p["periods"] == 2
    assert Decimal(p["return_pct"]) == Decimal("4.0404") and Decimal(p["net_pnl"]) == 400
    assert p["market_start"].startswith("2019-03-04T01:00")
    # Buy-and-hold over the same window: 99 → 102.
    assert Decimal(p["benchmark_return_pct"]) == Decimal("3.0303")
    assert [Decimal(point["equity"]) for point in p["equity_series"]] == [10100, 10300]
    assert api.get(f"/api/bots/{bot.pk}/performance/?period=1y").status_code == 400


def test_sparse_marks_get_a_coarser_grid(api, user):
    """A bot that marks every 12 candles (a long interval on the replay) is measured on a 12h
    grid, not on 1h with eleven zero returns out of twelve."""
    bot = BotFactory(owner=user)
    started(bot)
    now = timezone.now()
    for i in range(40):
        mark(
            bot,
            time=now - timedelta(minutes=40 - i),
            market_time=MARKET + timedelta(hours=12 * i),
            equity=10000 + (i % 3) * 50 + i,
        )

    p = api.get(f"/api/bots/{bot.pk}/performance/").json()

    assert p["grid"] == "12h" and p["periods"] == 40 and p["sharpe"] is not None


def test_the_replay_looping_back_does_not_break_the_grid(api, user):
    """The recording wraps: market time jumps back two years. The clock runs on, so every mark
    is a period of its own and the returns across the jump count once."""
    bot = BotFactory(owner=user, symbols=["BTC/USD"])
    started(bot)
    now = timezone.now()
    end = datetime(2019, 10, 17, 5, 0, tzinfo=UTC)
    times = [end + timedelta(hours=i) for i in range(3)] + [
        datetime(2017, 7, 9, 11, tzinfo=UTC) + timedelta(hours=i) for i in range(3)
    ]
    for i, market_time in enumerate(times):
        mark(bot, time=now - timedelta(minutes=10 - i), market_time=market_time, equity=10000 + 10 * i)

    marks = list(EquitySnapshot.objects.filter(bot=bot).order_by("time").values_list("market_clock", flat=True))
    assert marks == sorted(marks) and marks[3] - marks[2] == 3600
    p = api.get(f"/api/bots/{bot.pk}/performance/").json()
    assert p["periods"] == 6 and Decimal(p["net_pnl"]) == 50


def test_leaderboard_ranks_started_bots_and_lists_the_others_apart(api, user, other_user):
    leader = BotFactory(owner=user, name="leader", model="ema_rsi")
    laggard = BotFactory(owner=user, name="laggard", model="ema_rsi")
    BotFactory(owner=user, name="idle", provider="openai", model="gpt-4o-mini")
    btc = BotFactory(
        owner=user,
        name="btc-llm",
        provider="openai",
        model="gpt-4o-mini",
        exchange="binance",
        symbols=["ETH/BTC"],
        timeframe="5m",
        starting_capital="1",
    )
    BotFactory(owner=other_user, name="not-mine")
    for bot in (leader, laggard, btc):
        started(bot)
    hourly(leader, [10000, 10100, 10300], prices=[100, 101, 102])
    hourly(laggard, [10000, 9950, 9900], prices=[100, 101, 102])
    now = timezone.now()
    # The BTC bot paid 0.02 USD for its decisions and no rate converted them into BTC.
    mark(btc, time=now - timedelta(minutes=2), market_time=MARKET, equity="1.0", llm_usd="0.01", unconverted="0.01")
    mark(
        btc,
        time=now - timedelta(minutes=1),
        market_time=MARKET + timedelta(minutes=5),
        equity="1.01",
        llm_usd="0.02",
        unconverted="0.02",
    )

    board = api.get("/api/leaderboard/").json()

    rows = board["rows"]
    assert [(r["name"], r["rank"]) for r in rows] == [("leader", 1), ("laggard", 2), ("btc-llm", None)]
    assert Decimal(rows[0]["net_return_pct"]) == 3 and Decimal(rows[1]["net_return_pct"]) == -1
    # Never a BTC figure with dollars in it: unknown, and said why.
    btc_row = rows[2]
    assert btc_row["net_pnl"] is None and btc_row["net_return_pct"] is None and btc_row["quote_currency"] == "BTC"
    assert Decimal(btc_row["return_pct"]) == 1 and "no rate into BTC" in btc_row["unranked_reason"]
    assert [b["name"] for b in board["not_started"]] == ["idle"]
    for field in (
        "net_return_ci",
        "sharpe",
        "sharpe_ci",
        "excess_return_vs_buy_and_hold_pct",
        "excess_return_ci",
        "periods",
    ):
        assert field in rows[0]
    # Per model: the two ema_rsi bots averaged.
    [model] = [m for m in board["models"] if m["model"] == "ema_rsi"]
    assert model["bots"] == 2 and Decimal(model["net_return_pct"]) == 1 and model["rank"] == 1
    assert board["window_end"] and board["period"] == "all"


def test_not_distinguishable_from_buy_and_hold_is_said_in_words(api, user):
    bot = BotFactory(owner=user, model="buy_and_hold")
    started(bot)
    rng = np.random.default_rng(11)
    prices = list(100 * np.cumprod(1 + rng.normal(0, 0.01, 45)))
    hourly(bot, [10000 * p / prices[0] for p in prices], prices=prices)

    [row] = api.get("/api/leaderboard/").json()["rows"]

    low, high = (Decimal(x) for x in row["excess_return_ci"])
    assert low <= 0 <= high and row["verdict"] == "not distinguishable from buy-and-hold"


def test_leaderboard_queries_do_not_grow_with_bots(api, user, django_assert_max_num_queries):
    def add(count: int) -> None:
        for i in range(count):
            bot = BotFactory(owner=user, name=f"bot-{Bot.objects.count()}-{i}")
            started(bot)
            hourly(bot, [10000, 10010, 10020], prices=[1, 1, 1])

    add(2)
    with django_assert_max_num_queries(14) as few:
        api.get("/api/leaderboard/?period=7d")
    add(8)
    with django_assert_max_num_queries(len(few.captured_queries)):
        rows = api.get("/api/leaderboard/?period=7d").json()["rows"]
    assert len(rows) == 10


def test_analytics_per_bot_and_per_model(api, user):
    bot = BotFactory(owner=user, name="a", provider="openai", model="gpt-4o-mini")
    now = timezone.now()
    for i, (side, pnl, fees, leverage, confidence, hours) in enumerate(
        [("long", 100, 10, 2, "0.6", 2), ("short", -40, 10, 3, "0.8", 4), ("long", 20, 5, 1, None, 6)]
    ):
        position = Position.objects.create(
            bot=bot,
            symbol="BTC/USD",
            side=side,
            status="closed",
            quantity=Decimal(1),
            entry_price=Decimal(100),
            exit_price=Decimal(101),
            leverage=Decimal(leverage),
            margin=Decimal(100),
            realized_pnl=Decimal(pnl),
            fees=Decimal(fees),
            confidence=None if confidence is None else Decimal(confidence),
            close_reason="decision",
            opened_at=now - timedelta(hours=10 + i),
            closed_at=now - timedelta(minutes=10 + i),
        )
        # Held `hours` of market time (the wall clock of a replay runs much faster).
        for leg, (intent, market_time) in enumerate(
            [("open", MARKET + timedelta(hours=10 * i)), ("close", MARKET + timedelta(hours=10 * i + hours))]
        ):
            order = Order.objects.create(
                bot=bot,
                position=position,
                client_order_id=f"an-{i}-{leg}",
                symbol="BTC/USD",
                side="buy",
                intent=intent,
                quantity=Decimal(1),
                status="filled",
            )
            Fill.objects.create(
                order=order,
                bot=bot,
                symbol="BTC/USD",
                side="buy",
                quantity=Decimal(1),
                price=Decimal(100),
                market_time=market_time,
            )
    for i, error in enumerate(["", "bad size", ""]):
        Cycle.objects.create(
            bot=bot,
            slot=now - timedelta(minutes=i),
            started_at=now,
            status="completed",
            decision={},
            decision_error=error,
        )
    from bots.models import LLMCall

    LLMCall.objects.create(bot=bot, provider="openai", model="gpt-4o-mini", cost=Decimal("0.03"))

    data = api.get("/api/analytics/").json()

    [row] = data["bots"]
    a = row["analytics"]
    t = a["trades"]
    assert t["round_trips"] == 3 and Decimal(t["win_rate"]) == Decimal("66.67")
    assert t["median_holding_seconds"] == 4 * 3600 and t["avg_holding_seconds"] == 4 * 3600
    assert Decimal(t["long_pct"]) == Decimal("66.67") and Decimal(t["avg_leverage"]) == 2
    assert Decimal(t["avg_confidence"]) == Decimal("0.7")
    # Net on margin: +90 %, -50 %, +15 %.
    assert Decimal(t["biggest_win_pct"]) == 90 and Decimal(t["biggest_loss_pct"]) == -50
    assert Decimal(t["biggest_win"]) == 90 and Decimal(t["biggest_loss"]) == -50
    # Fees 25 of a gross 80.
    assert Decimal(t["fees_pct_of_gross"]) == Decimal("31.25")
    assert a["decisions"] == 3 and Decimal(a["invalid_output_rate"]) == Decimal("33.3333")
    assert Decimal(a["llm_cost_per_decision"]) == Decimal("0.01") and Decimal(a["llm_cost_per_round_trip"]) == Decimal(
        "0.01"
    )
    [model] = data["models"]
    assert model["model"] == "gpt-4o-mini" and model["analytics"]["trades"]["round_trips"] == 3
    assert model["analytics"]["trades"]["biggest_win"] is None  # money is per bot only
    assert Decimal(model["analytics"]["trades"]["fees_pct_of_gross"]) == Decimal("31.25")


def test_arena_lines_are_percent_returns_on_market_time(api, user):
    bot = BotFactory(owner=user, name="runner")
    started(bot)
    hourly(bot, [10000, 10100, 9900])
    BotFactory(owner=user, name="never-ran")

    [line] = api.get("/api/arena/").json()

    assert line["name"] == "runner" and line["is_baseline"] is True
    assert [(t, float(v)) for t, v in line["points"]] == [(0, 0), (0, 0), (3600, 1), (7200, -1)]


def test_the_prompts_sharpe_so_far_follows_the_same_rule(user):
    from bots.performance import sharpe_so_far

    bot = BotFactory(owner=user)
    started(bot)
    rng = np.random.default_rng(5)
    equities = [round(10000 * float(v), 6) for v in np.cumprod(1 + rng.normal(0.0005, 0.01, 40))]
    base = timezone.now() - timedelta(hours=1)

    def add(indexes: range) -> None:
        for i in indexes:
            mark(bot, time=base + timedelta(seconds=i), market_time=MARKET + timedelta(hours=i), equity=equities[i])

    add(range(28))
    assert sharpe_so_far(bot=bot) is None  # 28 periods of market time: absent from the prompt
    add(range(28, 40))
    values = np.array([10000.0, *equities])
    expected = empyrical.sharpe_ratio(values[1:] / values[:-1] - 1, annualization=365 * 24)
    assert float(sharpe_so_far(bot=bot)) == pytest.approx(expected, abs=0.005)


def test_a_stop_is_marked_and_its_round_trip_reconciles_with_the_figures(api, user):
    """A stop closes positions between cycles and no cycle follows: the stop marks the account,
    so the net PnL on marks is the round trip's net PnL, and buy-and-hold stays known."""
    from tests.factories import traded

    bot = traded(owner=user, name="stopped")
    marks_before = EquitySnapshot.objects.filter(bot=bot).count()

    assert api.post(f"/api/bots/{bot.pk}/stop/").json()["closed_positions"] == 1

    assert EquitySnapshot.objects.filter(bot=bot).count() == marks_before + 1
    [trip] = api.get(f"/api/bots/{bot.pk}/round-trips/").json()["results"]
    p = api.get(f"/api/bots/{bot.pk}/performance/").json()
    assert Decimal(p["net_pnl"]) == Decimal(trip["net_pnl"]) and p["trades"] == 1
    assert p["benchmark_return_pct"] is not None
    [row] = api.get("/api/leaderboard/").json()["rows"]
    assert Decimal(row["net_pnl"]) == Decimal(trip["net_pnl"])
