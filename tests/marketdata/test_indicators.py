"""Indicators against hand-computed (and, for MACD, TA-Lib) references on recorded data; the resampler."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
import talib

from marketdata.feeds.replay import ReplayFeed
from marketdata.indicators import (
    INDICATOR_KEYS,
    compute_indicators,
    decimal_text,
    resample,
    significant_quantum,
)
from marketdata.timeframes import higher_timeframe
from marketdata.types import CandleData

SLOT = datetime(2025, 3, 14, 9, 26, 45, tzinfo=UTC)


def _candles(feed: ReplayFeed, exchange: str, symbol: str, timeframe: str, limit: int = 200) -> list[CandleData]:
    until = feed.market_time(exchange=exchange, symbol=symbol, timeframe=timeframe, slot=SLOT)
    return feed.fetch_ohlcv(exchange=exchange, symbol=symbol, timeframe=timeframe, until=until, limit=limit)


def _ema(values: list[float], period: int) -> float:
    # Seeded with the simple average of the first `period` values, as TA-Lib does.
    ema = sum(values[:period]) / period
    k = 2 / (period + 1)
    for value in values[period:]:
        ema += k * (value - ema)
    return ema


def _wilder(values: list[float], period: int) -> float:
    average = sum(values[:period]) / period
    for value in values[period:]:
        average = (average * (period - 1) + value) / period
    return average


def _rsi(closes: list[float], period: int) -> float:
    changes = [b - a for a, b in zip(closes, closes[1:], strict=False)]
    gain = _wilder([max(c, 0.0) for c in changes], period)
    loss = _wilder([max(-c, 0.0) for c in changes], period)
    return 100 * gain / (gain + loss)


def _atr(candles: list[CandleData], period: int) -> float:
    ranges = [
        max(float(c.high) - float(c.low), abs(float(c.high) - float(p.close)), abs(float(c.low) - float(p.close)))
        for p, c in zip(candles, candles[1:], strict=False)
    ]
    return _wilder(ranges, period)


def _close_to(value: Decimal | None, reference: float, quantum: Decimal) -> bool:
    assert value is not None
    return abs(value - Decimal(reference)) <= quantum


def test_ema_rsi_atr_bollinger_volume_match_hand_computed_values(shared_replay: ReplayFeed) -> None:
    candles = _candles(shared_replay, "coinbase", "BTC/USD", "1h")
    result = compute_indicators(candles).latest
    closes = [float(c.close) for c in candles]
    q = significant_quantum(candles[-1].close)
    assert q == Decimal(1).scaleb(candles[-1].close.adjusted() - 7)  # 8 significant digits of the price

    assert _close_to(result["ema20"], _ema(closes, 20), q)
    assert _close_to(result["ema50"], _ema(closes, 50), q)
    assert _close_to(result["rsi7"], _rsi(closes, 7), Decimal("0.01"))
    assert _close_to(result["rsi14"], _rsi(closes, 14), Decimal("0.01"))
    assert _close_to(result["atr3"], _atr(candles, 3), q)
    assert _close_to(result["atr14"], _atr(candles, 14), q)

    window = closes[-20:]
    mean = sum(window) / 20
    deviation = math.sqrt(sum((x - mean) ** 2 for x in window) / 20)  # population, as TA-Lib
    assert _close_to(result["bb_middle"], mean, q)
    assert _close_to(result["bb_upper"], mean + 2 * deviation, q)
    assert _close_to(result["bb_lower"], mean - 2 * deviation, q)

    volumes = [c.volume for c in candles[-20:]]
    average = sum(volumes, Decimal(0)) / 20
    assert result["volume"] == candles[-1].volume
    assert result["volume_avg20"] is not None and abs(result["volume_avg20"] - average) <= significant_quantum(average)
    assert result["volume_ratio"] is not None
    assert abs(result["volume_ratio"] - candles[-1].volume / average) <= Decimal("0.0001")


def test_macd_matches_talib_reference(shared_replay: ReplayFeed) -> None:
    candles = _candles(shared_replay, "binance", "ETH/BTC", "5m")
    closes = np.array([float(c.close) for c in candles])
    macd, signal, hist = talib.MACD(closes, 12, 26, 9)
    result = compute_indicators(candles)
    q = significant_quantum(candles[-1].close)
    assert _close_to(result.latest["macd"], float(macd[-1]), q)
    assert _close_to(result.latest["macd_signal"], float(signal[-1]), q)
    assert _close_to(result.latest["macd_hist"], float(hist[-1]), q)
    assert [
        v is not None and _close_to(v, float(r), q) for v, r in zip(result.series["macd"], macd[-10:], strict=True)
    ] == [True] * 10


def test_series_are_the_last_ten_values_oldest_first(shared_replay: ReplayFeed) -> None:
    candles = _candles(shared_replay, "coinbase", "BTC/USD", "1h")
    result = compute_indicators(candles)
    assert result.series["close"] == [c.close for c in candles[-10:]]
    assert result.series["volume"] == [c.volume for c in candles[-10:]]
    for key in ("ema20", "ema50", "rsi7", "rsi14", "macd"):
        assert len(result.series[key]) == 10
        assert result.series[key][-1] == result.latest[key]
    shorter = compute_indicators(candles[:-1])
    assert result.series["ema20"][:-1] == shorter.series["ema20"][1:]


def test_tiny_prices_keep_eight_significant_digits_without_exponents(shared_replay: ReplayFeed) -> None:
    candles = _candles(shared_replay, "binance", "ADA/BTC", "5m")
    assert candles[-1].close < Decimal("0.001")
    data = compute_indicators(candles).as_json()
    ema20 = data["indicators"]["ema20"]
    assert isinstance(ema20, str) and "E" not in ema20.upper()
    digits = ema20.split(".")[1].lstrip("0")
    assert len(digits) <= 8 and Decimal(ema20) > 0
    assert all(v is None or "E" not in v.upper() for values in data["series"].values() for v in values)


def test_short_history_gives_none_not_nan(shared_replay: ReplayFeed) -> None:
    candles = _candles(shared_replay, "coinbase", "BTC/USD", "1h", limit=30)
    result = compute_indicators(candles)
    assert result.latest["ema50"] is None
    assert result.latest["macd"] is None  # MACD(12,26,9) needs 34 candles
    assert result.latest["ema20"] is not None and result.latest["rsi14"] is not None
    assert result.series["ema50"] == [None] * 10
    empty = compute_indicators([])
    assert set(empty.latest) == set(INDICATOR_KEYS) and all(v is None for v in empty.latest.values())


def test_decimal_text_is_plain() -> None:
    assert decimal_text(Decimal("5.33E-5")) == "0.0000533"
    assert decimal_text(Decimal("-0.0000")) == "0.0000"
    assert decimal_text(None) is None
    assert significant_quantum(Decimal("8051")) == Decimal("0.0001")
    assert significant_quantum(Decimal("0.0000529")) == Decimal("1E-12")


# --- resampling ------------------------------------------------------------------------------


def test_resample_5m_to_1h_aggregates_each_complete_hour(shared_replay: ReplayFeed) -> None:
    candles = _candles(shared_replay, "binance", "ETH/BTC", "5m", limit=300)
    hours = resample(candles, source="5m", target="1h")
    assert all(h.open_time.minute == 0 for h in hours)
    assert all(b.open_time - a.open_time == timedelta(hours=1) for a, b in zip(hours, hours[1:], strict=False))
    hour = hours[-2]
    members = [c for c in candles if hour.open_time <= c.open_time < hour.open_time + timedelta(hours=1)]
    assert len(members) == 12
    assert hour.open == members[0].open
    assert hour.high == max(c.high for c in members)
    assert hour.low == min(c.low for c in members)
    assert hour.close == members[-1].close
    assert hour.volume == sum((c.volume for c in members), Decimal(0))


def test_resample_drops_the_partial_first_and_the_forming_last_bucket(shared_replay: ReplayFeed) -> None:
    candles = _candles(shared_replay, "binance", "ETH/BTC", "5m", limit=300)
    start = next(i for i, c in enumerate(candles) if c.open_time.minute == 10)
    trimmed = candles[start:]
    while trimmed[-1].open_time.minute != 50:
        trimmed = trimmed[:-1]
    hours = resample(trimmed, source="5m", target="1h")
    first_full = trimmed[0].open_time.replace(minute=0) + timedelta(hours=1)
    last_full = trimmed[-1].open_time.replace(minute=0) - timedelta(hours=1)
    assert hours[0].open_time == first_full
    assert hours[-1].open_time == last_full
    # With the hour's last candle (xx:55) present, that hour is complete and included.
    closing = [c for c in candles if c.open_time == trimmed[-1].open_time + timedelta(minutes=5)]
    assert resample(trimmed + closing, source="5m", target="1h")[-1].open_time == last_full + timedelta(hours=1)


def test_resample_keeps_a_bucket_with_a_gap_at_its_own_open_time() -> None:
    def candle(hour: int, price: str) -> CandleData:
        p = Decimal(price)
        return CandleData(datetime(2024, 1, 1, hour, tzinfo=UTC), p, p + 1, p - 1, p, Decimal(1))

    # 04:00 missing from the 04:00-08:00 bucket (exchange downtime).
    candles = [candle(h, str(100 + h)) for h in (0, 1, 2, 3, 5, 6, 7)]
    buckets = resample(candles, source="1h", target="4h")
    assert [b.open_time.hour for b in buckets] == [0, 4]
    assert buckets[1].open == Decimal(105) and buckets[1].volume == Decimal(3)


def test_daily_to_weekly_buckets_open_on_monday(shared_replay: ReplayFeed) -> None:
    hourly = _candles(shared_replay, "coinbase", "BTC/USD", "1h", limit=24 * 7 * 6)
    four_hourly = resample(hourly, source="1h", target="4h")
    assert all(c.open_time.hour % 4 == 0 for c in four_hourly)
    daily = resample(four_hourly, source="4h", target="1d")
    assert all(c.open_time.hour == 0 for c in daily)
    weekly = resample(daily, source="1d", target="1w")
    assert weekly and all(c.open_time.weekday() == 0 for c in weekly)
    assert weekly[0].volume == sum(
        (d.volume for d in daily if weekly[0].open_time <= d.open_time < weekly[0].open_time + timedelta(days=7)),
        Decimal(0),
    )


def test_higher_timeframes_and_invalid_resampling() -> None:
    assert [higher_timeframe(tf) for tf in ("5m", "15m", "1h", "4h", "1d")] == ["1h", "4h", "4h", "1d", "1w"]
    assert higher_timeframe("1w") is None
    with pytest.raises(ValueError, match="larger multiple"):
        resample([], source="1h", target="5m")
