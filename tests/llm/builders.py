"""Market snapshots and decision contexts built the way marketdata.services.snapshot_build lays
them out (`MarketSnapshot.data`: JSON-ready, numbers as decimal strings, series oldest first)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from bots.decisions import AccountView, DecisionContext, PositionView, RiskLimitsView
from marketdata.types import CandleData, MarketInfo, MarketSnapshot, SymbolMarket

SLOT = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
MARKET_TIME = datetime(2026, 11, 21, 11, 0, tzinfo=UTC)


def _candles(price: Decimal, count: int = 12) -> tuple[CandleData, ...]:
    candles = []
    for i in range(count):
        close = price - Decimal(count - 1 - i) * Decimal("10")
        candles.append(
            CandleData(
                open_time=MARKET_TIME - timedelta(hours=count - 1 - i),
                open=close - Decimal(5),
                high=close + Decimal(20),
                low=close - Decimal(20),
                close=close,
                volume=Decimal("12.5") + i,
            )
        )
    return tuple(candles)


def symbol_data(price: Decimal, *, funding: str | None = None) -> dict[str, Any]:
    closes = [str(c.close) for c in _candles(price, 10)]
    return {
        "price": str(price),
        "market_time": MARKET_TIME.isoformat(),
        "funding_rate": funding,
        "indicators": {
            "ema20": str(price - 40),
            "ema50": str(price - 90),
            "rsi7": "61.2",
            "rsi14": "57.9",
            "macd": "12.4",
            "macd_signal": "9.8",
            "macd_hist": "2.6",
            "bb_upper": str(price + 150),
            "bb_middle": str(price - 20),
            "bb_lower": str(price - 190),
            "atr3": "45.1",
            "atr14": "52.3",
            "volume": "21.5",
            "volume_avg20": "18.2",
            "volume_ratio": "1.18",
        },
        "series": {
            "close": closes,
            "ema20": [str(price - 60 + i) for i in range(10)],
            "rsi7": ["55.0", "56.1", "58.3", None, "60.0", "61.0", "59.4", "60.2", "61.0", "61.2"],
            "rsi14": ["52.0"] * 10,
            "macd": ["10.0", "10.5", "11.0", "11.2", "11.5", "11.9", "12.0", "12.1", "12.3", "12.4"],
            "volume": ["12.5"] * 10,
        },
        "higher_timeframe": {
            "timeframe": "4h",
            "indicators": {"ema20": str(price - 200), "ema50": str(price - 500), "rsi14": "55.5", "macd": None},
            "series": {"close": [str(price - 300), str(price - 150), str(price)], "rsi14": ["50.0", "53.0", "55.5"]},
        },
    }


def make_snapshot(prices: dict[str, Decimal], *, exchange: str = "coinbase", timeframe: str = "1h") -> MarketSnapshot:
    markets = {}
    symbols = {}
    for symbol, price in prices.items():
        base, quote = symbol.split("/")
        info = MarketInfo(
            symbol=symbol, base=base, quote=quote, amount_step=Decimal("0.00001"), price_step=Decimal("0.01")
        )
        markets[symbol] = SymbolMarket(symbol=symbol, info=info, candles=_candles(price))
        symbols[symbol] = symbol_data(price)
    data = {
        "exchange": exchange,
        "timeframe": timeframe,
        "market_time": MARKET_TIME.isoformat(),
        "series_order": "oldest_to_newest",
        "symbols": symbols,
    }
    digest = hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return MarketSnapshot(
        exchange=exchange,
        timeframe=timeframe,
        slot=SLOT,
        market_time=MARKET_TIME,
        markets=markets,
        data=data,
        hash=digest,
    )


LIMITS = RiskLimitsView(
    max_position_pct=Decimal(20),
    max_leverage=Decimal(3),
    max_exposure_pct=Decimal(100),
    max_trades_per_day=20,
    daily_loss_limit_pct=Decimal(5),
    max_drawdown_pct=Decimal(20),
)


def make_context(
    snapshot: MarketSnapshot,
    *,
    bot_id: int = 1,
    bot_name: str = "claude-vs-gpt",
    positions: list[PositionView] | None = None,
    equity: Decimal = Decimal("10250.50"),
) -> DecisionContext:
    return DecisionContext(
        bot_id=bot_id,
        bot_name=bot_name,
        symbols=sorted(snapshot.data["symbols"]),
        timeframe=snapshot.timeframe,
        snapshot=snapshot,
        account=AccountView(
            equity=equity,
            cash=Decimal("8100.25"),
            starting_capital=Decimal(10000),
            return_pct=Decimal("2.505"),
            sharpe=Decimal("1.42"),
            quote_currency="USD",
            trades_today=3,
        ),
        positions=positions or [],
        limits=LIMITS,
        slot_iso=SLOT.isoformat(),
    )


def eth_position() -> PositionView:
    return PositionView(
        symbol="ETH/USD",
        side="long",
        quantity=Decimal("0.5"),
        entry_price=Decimal("3050"),
        leverage=Decimal(2),
        margin=Decimal("762.5"),
        unrealized_pnl=Decimal("25"),
        stop_loss=Decimal("2950"),
        take_profit=Decimal("3300"),
        liquidation_price=Decimal("1600"),
        thesis="Breakout above the 4h range with rising volume.",
        invalidation="A 4h close back below 3000.",
        opened_at="2026-11-21T07:00:00+00:00",
    )


def decision_json(**overrides: Any) -> str:
    """A valid answer for BTC/USD (price 91000) and ETH/USD (price 3100)."""
    answer: dict[str, Any] = {
        "market_summary": "BTC trends up on rising volume; ETH consolidates.",
        "actions": [
            {
                "symbol": "BTC/USD",
                "reasoning": "EMA20 above EMA50, RSI14 57.9, MACD histogram positive.",
                "action": "open_long",
                "size_pct": 10,
                "leverage": 2,
                "stop_loss": 89500.5,
                "take_profit": 94000,
                "confidence": 0.72,
                "invalidation": "A 1h close below 89500.",
            },
            {
                "symbol": "ETH/USD",
                "reasoning": "Keep the open long; its thesis holds.",
                "action": "hold",
                "size_pct": 0,
                "leverage": 1,
                "stop_loss": None,
                "take_profit": None,
                "confidence": 0.6,
                "invalidation": "",
            },
        ],
    }
    answer.update(overrides)
    return json.dumps(answer)


PRICES = {"BTC/USD": Decimal("91000"), "ETH/USD": Decimal("3100")}
