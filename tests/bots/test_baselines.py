"""Rule baselines: valid decisions within the limits; ema_rsi trades crossovers found in real data."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import redis
from django.conf import settings

from bots.baselines import BASELINES, get_baseline, last_cross
from bots.decisions import AccountView, Action, DecisionContext, PositionView, RiskLimitsView
from marketdata.feeds.replay import ReplayFeed
from marketdata.indicators import compute_indicators
from marketdata.services import CACHE_PREFIX, snapshot_build
from marketdata.timeframes import to_epoch_seconds
from marketdata.types import CandleData, MarketInfo, MarketSnapshot, SymbolMarket

BASE_SLOT = datetime(2025, 3, 14, 9, 26, 45, tzinfo=UTC)
WARMUP = 200


@pytest.fixture(autouse=True)
def _market_settings(settings: Any) -> None:
    settings.MARKET_DATA_CANDLES = 200
    settings.REPLAY_CANDLE_SECONDS = 15


@pytest.fixture
def replay() -> Iterator[ReplayFeed]:
    """The replay feed under its own name, so its cached candles are this test's alone."""
    feed = ReplayFeed(candle_seconds=15, warmup=WARMUP)
    feed.name = f"test-baselines-{uuid.uuid4().hex[:12]}"
    yield feed
    client = redis.Redis.from_url(str(settings.REDIS_URL))
    keys = list(client.scan_iter(match=f"{CACHE_PREFIX}:{feed.name}:*"))
    if keys:
        client.delete(*keys)


def _all_candles(feed: ReplayFeed, exchange: str, symbol: str, timeframe: str) -> list[CandleData]:
    far = datetime(2100, 1, 1, tzinfo=UTC)
    return feed.fetch_ohlcv(exchange=exchange, symbol=symbol, timeframe=timeframe, until=far, limit=1_000_000)


def _slot_for_index(index: int, total: int) -> datetime:
    """A slot whose replay clock points at candle `index` (inverts the documented formula)."""
    steps = total - WARMUP
    base = to_epoch_seconds(BASE_SLOT) // 15 // steps * steps
    return datetime.fromtimestamp((base + index - WARMUP) * 15, UTC)


def _find_index(candles: list[CandleData], wanted: str, *, rsi_ok: Any, start: int = WARMUP) -> int:
    """The first candle index where the snapshot's indicators show a fresh `wanted` cross."""
    for index in range(start, len(candles)):
        result = compute_indicators(candles[index - WARMUP + 1 : index + 1])
        ema20, ema50, rsi14 = (result.latest[k] for k in ("ema20", "ema50", "rsi14"))
        if ema20 is None or ema50 is None or rsi14 is None:
            continue
        cross = last_cross(result.series["ema20"], result.series["ema50"])
        trending = ema20 > ema50 if wanted == "up" else ema20 < ema50
        if cross == wanted and trending and rsi_ok(rsi14):
            return index
    raise AssertionError(f"no {wanted} cross in the recording")


def _context(
    snapshot: MarketSnapshot,
    symbols: list[str],
    *,
    positions: list[PositionView] | None = None,
    max_position_pct: Decimal = Decimal(20),
    max_exposure_pct: Decimal = Decimal(100),
    trades_today: int = 0,
    max_trades_per_day: int = 20,
) -> DecisionContext:
    return DecisionContext(
        bot_id=1,
        bot_name="baseline-test",
        symbols=symbols,
        timeframe=snapshot.timeframe,
        snapshot=snapshot,
        account=AccountView(
            equity=Decimal(10000),
            cash=Decimal(10000),
            starting_capital=Decimal(10000),
            return_pct=Decimal(0),
            sharpe=None,
            quote_currency="USD",
            trades_today=trades_today,
        ),
        positions=positions or [],
        limits=RiskLimitsView(
            max_position_pct=max_position_pct,
            max_leverage=Decimal(3),
            max_exposure_pct=max_exposure_pct,
            max_trades_per_day=max_trades_per_day,
            daily_loss_limit_pct=Decimal(5),
            max_drawdown_pct=Decimal(20),
        ),
        slot_iso=snapshot.slot.isoformat(),
    )


def _position(symbol: str, side: str, price: Decimal) -> PositionView:
    return PositionView(
        symbol=symbol,
        side=side,
        quantity=Decimal("0.01"),
        entry_price=price,
        leverage=Decimal(1),
        margin=price * Decimal("0.01"),
        unrealized_pnl=Decimal(0),
        stop_loss=None,
        take_profit=None,
        liquidation_price=None,
        thesis="test",
        invalidation="",
        opened_at="2025-01-01T00:00:00Z",
    )


# --- hold and buy_and_hold -------------------------------------------------------------------


@pytest.mark.django_db
def test_hold_never_trades_and_records_what_it_saw(replay: ReplayFeed) -> None:
    snapshot = snapshot_build(
        exchange="binance", symbols=["ETH/BTC", "ADA/BTC"], timeframe="5m", slot=BASE_SLOT, feed=replay
    )
    outcome = get_baseline("hold").decide(_context(snapshot, ["ETH/BTC", "ADA/BTC"]))
    assert [a.action for a in outcome.decision.actions] == [Action.HOLD, Action.HOLD]
    assert outcome.prompt_version == "baseline-hold-1"
    assert (outcome.input_tokens, outcome.output_tokens, outcome.cost, outcome.error) == (0, 0, Decimal(0), "")
    prompt = json.loads(outcome.prompt)
    assert prompt["snapshot_hash"] == snapshot.hash
    assert prompt["symbols"]["ETH/BTC"]["price"] == snapshot.data["symbols"]["ETH/BTC"]["price"]
    assert json.loads(outcome.raw_output)["actions"][0]["action"] == "hold"


@pytest.mark.django_db
def test_buy_and_hold_opens_once_within_limits_and_reopens_after_a_stop(replay: ReplayFeed) -> None:
    symbols = ["ADA/BTC", "ETH/BTC"]
    snapshot = snapshot_build(exchange="binance", symbols=symbols, timeframe="5m", slot=BASE_SLOT, feed=replay)
    baseline = get_baseline("buy_and_hold")

    first = baseline.decide(_context(snapshot, symbols, max_exposure_pct=Decimal(30)))
    opens = {a.symbol: a for a in first.decision.actions}
    assert [opens[s].action for s in symbols] == [Action.OPEN_LONG, Action.OPEN_LONG]
    # 95% split in two is 47.5% each, capped at max_position_pct (20), then by what exposure leaves (10).
    assert [opens[s].size_pct for s in symbols] == [Decimal(20), Decimal(10)]
    assert all(a.leverage == 1 for a in first.decision.actions)
    assert first.prompt_version == "baseline-buy_and_hold-1"

    price = snapshot.price("ADA/BTC")
    holding = baseline.decide(
        _context(
            snapshot,
            symbols,
            positions=[_position("ADA/BTC", "long", price), _position("ETH/BTC", "long", snapshot.price("ETH/BTC"))],
        )
    )
    assert [a.action for a in holding.decision.actions] == [Action.HOLD, Action.HOLD]

    # ADA/BTC's position was closed by its stop: buy_and_hold buys it back.
    reopened = baseline.decide(
        _context(snapshot, symbols, positions=[_position("ETH/BTC", "long", snapshot.price("ETH/BTC"))])
    )
    actions = {a.symbol: a.action for a in reopened.decision.actions}
    assert actions == {"ADA/BTC": Action.OPEN_LONG, "ETH/BTC": Action.HOLD}

    limited = baseline.decide(_context(snapshot, symbols, trades_today=20, max_trades_per_day=20))
    assert all(a.action == Action.HOLD for a in limited.decision.actions)
    assert "daily trade limit" in limited.decision.actions[0].reasoning


# --- ema_rsi on real crossovers --------------------------------------------------------------


@pytest.mark.django_db
def test_ema_rsi_opens_long_on_a_golden_cross_in_recorded_btc(replay: ReplayFeed) -> None:
    candles = _all_candles(replay, "coinbase", "BTC/USD", "1h")
    index = _find_index(candles, "up", rsi_ok=lambda rsi: rsi < 70)
    slot = _slot_for_index(index, len(candles))
    snapshot = snapshot_build(exchange="coinbase", symbols=["BTC/USD"], timeframe="1h", slot=slot, feed=replay)
    assert snapshot.market_time == candles[index].open_time

    outcome = get_baseline("ema_rsi").decide(_context(snapshot, ["BTC/USD"], max_position_pct=Decimal(5)))
    assert outcome.error == ""
    action = outcome.decision.actions[0]
    assert action.action == Action.OPEN_LONG
    assert action.size_pct == Decimal(5)  # 10% wanted, capped by max_position_pct
    indicators = snapshot.data["symbols"]["BTC/USD"]["indicators"]
    price, atr = snapshot.price("BTC/USD"), Decimal(indicators["atr14"])
    info = snapshot.markets["BTC/USD"].info
    assert action.stop_loss == info.round_price(price - 2 * atr)
    assert action.take_profit == info.round_price(price + 3 * atr)
    assert action.stop_loss is not None and action.take_profit is not None
    assert action.stop_loss < price < action.take_profit
    assert outcome.prompt_version == "baseline-ema_rsi-1"
    seen = json.loads(outcome.prompt)["symbols"]["BTC/USD"]
    assert seen["recent_cross"] == "up" and seen["ema20"] == indicators["ema20"]

    # Already long: holds; the same long after EMA20 falls below EMA50 would be closed.
    held = get_baseline("ema_rsi").decide(
        _context(snapshot, ["BTC/USD"], positions=[_position("BTC/USD", "long", price)])
    )
    assert held.decision.actions[0].action == Action.HOLD


@pytest.mark.django_db
def test_ema_rsi_closes_a_long_on_the_death_cross_and_never_shorts_spot(replay: ReplayFeed) -> None:
    candles = _all_candles(replay, "coinbase", "BTC/USD", "1h")
    index = _find_index(candles, "down", rsi_ok=lambda rsi: rsi > 30)
    snapshot = snapshot_build(
        exchange="coinbase", symbols=["BTC/USD"], timeframe="1h", slot=_slot_for_index(index, len(candles)), feed=replay
    )
    price = snapshot.price("BTC/USD")
    flat = get_baseline("ema_rsi").decide(_context(snapshot, ["BTC/USD"]))
    assert flat.decision.actions[0].action == Action.HOLD
    assert "spot: no shorts" in flat.decision.actions[0].reasoning
    long = get_baseline("ema_rsi").decide(
        _context(snapshot, ["BTC/USD"], positions=[_position("BTC/USD", "long", price)])
    )
    assert long.decision.actions[0].action == Action.CLOSE


@pytest.mark.django_db
def test_ema_rsi_shorts_a_death_cross_on_the_perpetual(replay: ReplayFeed) -> None:
    candles = _all_candles(replay, "binanceusdm", "XRP/USDT:USDT", "5m")
    index = _find_index(candles, "down", rsi_ok=lambda rsi: rsi > 30)
    slot = _slot_for_index(index, len(candles))
    snapshot = snapshot_build(exchange="binanceusdm", symbols=["XRP/USDT:USDT"], timeframe="5m", slot=slot, feed=replay)
    outcome = get_baseline("ema_rsi").decide(_context(snapshot, ["XRP/USDT:USDT"]))
    action = outcome.decision.actions[0]
    assert action.action == Action.OPEN_SHORT
    price = snapshot.price("XRP/USDT:USDT")
    assert action.take_profit is not None and action.stop_loss is not None
    assert action.take_profit < price < action.stop_loss
    assert action.size_pct == Decimal(10)


def _synthetic_snapshot(indicators: dict[str, str | None], series: dict[str, list[str | None]]) -> MarketSnapshot:
    info = MarketInfo(
        symbol="BTC/USD", base="BTC", quote="USD", amount_step=Decimal("0.0001"), price_step=Decimal("0.01")
    )
    candle = CandleData(BASE_SLOT, Decimal(100), Decimal(101), Decimal(99), Decimal(100), Decimal(5))
    return MarketSnapshot(
        exchange="coinbase",
        timeframe="1h",
        slot=BASE_SLOT,
        market_time=BASE_SLOT,
        markets={"BTC/USD": SymbolMarket("BTC/USD", info, (candle,))},
        data={"symbols": {"BTC/USD": {"price": "100", "indicators": indicators, "series": series}}},
        hash="x",
    )


def test_ema_rsi_holds_without_enough_history_and_on_missing_data() -> None:
    empty = _synthetic_snapshot({"ema20": "100", "ema50": None, "rsi14": "50", "atr14": "1"}, {})
    outcome = get_baseline("ema_rsi").decide(_context(empty, ["BTC/USD"]))
    assert outcome.decision.actions[0].action == Action.HOLD
    assert "not enough history" in outcome.decision.actions[0].reasoning
    # A symbol the snapshot lacks: a recorded hold, never an exception.
    broken = get_baseline("ema_rsi").decide(_context(empty, ["BTC/USD", "ETH/USD"]))
    assert broken.error and all(a.action == Action.HOLD for a in broken.decision.actions)


def test_ema_rsi_respects_the_exposure_left() -> None:
    snapshot = _synthetic_snapshot(
        {"ema20": "101", "ema50": "100", "rsi14": "55", "atr14": "2"},
        {"ema20": ["99", "99.5", "101"], "ema50": ["100", "100", "100"]},
    )
    # 10% wanted, but an open short elsewhere already uses 9.6% of the 14% exposure allowed.
    other = _position("ETH/USD", "short", Decimal(96000))  # 0.01 x 96000 = 960 = 9.6% of equity
    capped = get_baseline("ema_rsi").decide(
        _context(snapshot, ["BTC/USD"], max_exposure_pct=Decimal(14), positions=[other])
    )
    action = capped.decision.actions[0]
    assert action.action == Action.OPEN_LONG and action.size_pct == Decimal("4.40")
    assert (action.stop_loss, action.take_profit) == (Decimal(96), Decimal(106))  # 100 -/+ 2 and 3 x ATR 2
    overbought = _synthetic_snapshot(
        {"ema20": "101", "ema50": "100", "rsi14": "75", "atr14": "2"},
        {"ema20": ["99", "101"], "ema50": ["100", "100"]},
    )
    held = get_baseline("ema_rsi").decide(_context(overbought, ["BTC/USD"]))
    assert held.decision.actions[0].action == Action.HOLD and "overbought" in held.decision.actions[0].reasoning


def test_last_cross_finds_the_most_recent_crossing() -> None:
    assert last_cross(["1", "3", "1"], ["2", "2", "2"]) == "down"
    assert last_cross(["3", "1", "3"], ["2", "2", "2"]) == "up"
    assert last_cross([None, "3", "3"], ["2", "2", "2"]) is None
    assert last_cross(["3", "3"], ["2", "2"]) is None


def test_registry_and_unknown_names() -> None:
    assert sorted(BASELINES) == ["buy_and_hold", "ema_rsi", "hold"]
    baseline = get_baseline("ema_rsi")
    assert (baseline.provider, baseline.model) == ("baseline", "ema_rsi")
    with pytest.raises(ValueError, match="buy_and_hold, ema_rsi, hold"):
        get_baseline("rsi_only")
