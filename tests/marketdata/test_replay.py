"""The replay feed: the deterministic clock, gap filling, markets and funding from the CSVs."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings

from marketdata.exceptions import PermanentFeedError, UnknownMarketError
from marketdata.feeds.replay import ReplayFeed
from marketdata.timeframes import to_epoch_seconds

DATA = Path(settings.BASE_DIR) / "marketdata" / "data"
SLOT = datetime(2025, 3, 14, 9, 26, 45, tzinfo=UTC)  # a multiple of 15 s


def _rows(name: str) -> list[list[str]]:
    with (DATA / name).open() as handle:
        return list(csv.reader(handle))[1:]


def test_market_time_follows_the_documented_formula(shared_replay: ReplayFeed) -> None:
    rows = _rows("coinbase_BTC-USD_1h.csv")
    n = len(rows)  # no gaps in this file
    index = 200 + (to_epoch_seconds(SLOT) // 15) % (n - 200)
    expected = datetime.fromtimestamp(int(rows[index][0]) / 1000, UTC)
    assert shared_replay.market_time(exchange="coinbase", symbol="BTC/USD", timeframe="1h", slot=SLOT) == expected


def test_identical_slots_give_identical_candles_in_separate_instances(shared_replay: ReplayFeed) -> None:
    other = ReplayFeed(candle_seconds=15, warmup=200)
    kwargs = {"exchange": "binance", "symbol": "ETH/BTC", "timeframe": "5m"}
    first = shared_replay.market_time(slot=SLOT, **kwargs)
    second = other.market_time(slot=SLOT + timedelta(seconds=14, microseconds=999999), **kwargs)
    assert first == second
    assert shared_replay.fetch_ohlcv(until=first, limit=50, **kwargs) == other.fetch_ohlcv(
        until=second, limit=50, **kwargs
    )


def test_the_market_moves_one_candle_per_replay_step(shared_replay: ReplayFeed) -> None:
    kwargs = {"exchange": "binance", "symbol": "ETH/BTC", "timeframe": "5m"}
    times = [shared_replay.market_time(slot=SLOT + timedelta(seconds=15 * i), **kwargs) for i in range(4)]
    assert [b - a for a, b in zip(times, times[1:], strict=False)] == [timedelta(minutes=5)] * 3


def test_the_clock_wraps_around_to_the_warmup(shared_replay: ReplayFeed) -> None:
    n = len(_rows("binance_ETH-BTC_5m.csv"))
    steps = n - 200
    # The slot whose step lands on the last candle, and the next step.
    last_step = (steps - 1) - (to_epoch_seconds(SLOT) // 15) % steps
    slot_last = SLOT + timedelta(seconds=15 * last_step)
    kwargs = {"exchange": "binance", "symbol": "ETH/BTC", "timeframe": "5m"}
    rows = _rows("binance_ETH-BTC_5m.csv")
    assert shared_replay.market_time(slot=slot_last, **kwargs) == datetime.fromtimestamp(int(rows[-1][0]) / 1000, UTC)
    after = shared_replay.market_time(slot=slot_last + timedelta(seconds=15), **kwargs)
    assert after == datetime.fromtimestamp(int(rows[200][0]) / 1000, UTC)


def test_fetch_returns_closed_candles_up_to_until(shared_replay: ReplayFeed) -> None:
    kwargs = {"exchange": "coinbase", "symbol": "BTC/USD", "timeframe": "1h"}
    until = shared_replay.market_time(slot=SLOT, **kwargs)
    candles = shared_replay.fetch_ohlcv(until=until + timedelta(minutes=59), limit=120, **kwargs)
    assert len(candles) == 120
    assert candles[-1].open_time == until
    assert all(b.open_time - a.open_time == timedelta(hours=1) for a, b in zip(candles, candles[1:], strict=False))
    first = datetime.fromtimestamp(int(_rows("coinbase_BTC-USD_1h.csv")[0][0]) / 1000, UTC)
    assert shared_replay.fetch_ohlcv(until=first - timedelta(hours=1), limit=5, **kwargs) == []
    assert len(shared_replay.fetch_ohlcv(until=first + timedelta(hours=2), limit=5, **kwargs)) == 3


def test_ada_btc_gaps_are_filled_with_flat_zero_volume_candles(shared_replay: ReplayFeed) -> None:
    rows = _rows("binance_ADA-BTC_5m.csv")
    assert len(rows) == 5720  # the recording lacks 40 of its 5760 candles
    far = datetime(2030, 1, 1, tzinfo=UTC)
    candles = shared_replay.fetch_ohlcv(exchange="binance", symbol="ADA/BTC", timeframe="5m", until=far, limit=10_000)
    assert len(candles) == 5760
    assert shared_replay.gap_filled(exchange="binance", symbol="ADA/BTC", timeframe="5m") == 40
    assert all(b.open_time - a.open_time == timedelta(minutes=5) for a, b in zip(candles, candles[1:], strict=False))

    recorded = {int(r[0]) for r in rows}
    filled = [(i, c) for i, c in enumerate(candles) if int(c.open_time.timestamp() * 1000) not in recorded]
    assert len(filled) == 40
    for index, candle in filled:
        previous_close = candles[index - 1].close
        assert (candle.open, candle.high, candle.low, candle.close, candle.volume) == (
            previous_close,
            previous_close,
            previous_close,
            previous_close,
            Decimal(0),
        )
    # The longest gap: 33 candles after 2018-01-15 11:55 UTC, all at that candle's close.
    start = next(i for i, c in enumerate(candles) if c.open_time == datetime(2018, 1, 15, 11, 55, tzinfo=UTC))
    assert candles[start].close == Decimal("0.00005966")
    assert [c.volume for c in candles[start + 1 : start + 34]] == [Decimal(0)] * 33
    assert candles[start + 34].volume > 0
    # The file's own values are unchanged (scientific notation parsed exactly).
    assert candles[0].open == Decimal("0.0000533") and candles[0].volume == Decimal("431401.9787")


def test_markets_derive_precision_and_flag_perpetuals(shared_replay: ReplayFeed) -> None:
    assert shared_replay.exchanges() == ["binance", "binanceusdm", "coinbase"]
    btc = shared_replay.markets(exchange="coinbase")["BTC/USD"]
    assert (btc.base, btc.quote, btc.price_step, btc.amount_step, btc.contract) == (
        "BTC",
        "USD",
        Decimal("0.01"),
        Decimal("0.00000001"),
        False,
    )
    binance = shared_replay.markets(exchange="binance")
    assert sorted(binance) == ["ADA/BTC", "ETH/BTC"]
    assert binance["ETH/BTC"].price_step == Decimal("0.00000001")
    assert binance["ADA/BTC"].amount_step == Decimal(1)
    xrp = shared_replay.markets(exchange="binanceusdm")["XRP/USDT:USDT"]
    # 5 decimals appear in the 1h file (the 5m one has 4): the step fits every recorded price.
    assert (xrp.base, xrp.quote, xrp.contract, xrp.price_step, xrp.min_notional) == (
        "XRP",
        "USDT",
        True,
        Decimal("0.00001"),
        Decimal(5),
    )
    assert shared_replay.timeframes(exchange="binanceusdm", symbol="XRP/USDT:USDT") == ["5m", "1h"]


def test_funding_rate_is_the_latest_published_at_that_time(shared_replay: ReplayFeed) -> None:
    kwargs = {"exchange": "binanceusdm", "symbol": "XRP/USDT:USDT"}
    first = datetime.fromtimestamp(1637193600017 / 1000, UTC)
    assert shared_replay.funding_rate(at=first - timedelta(milliseconds=1), **kwargs) is None
    assert shared_replay.funding_rate(at=first, **kwargs) == Decimal("0.0001")
    changed = datetime.fromtimestamp(1637366400012 / 1000, UTC)
    assert shared_replay.funding_rate(at=changed + timedelta(hours=7), **kwargs) == Decimal("0.00013046")
    assert shared_replay.funding_rate(exchange="coinbase", symbol="BTC/USD", at=changed) is None


def test_short_recordings_warm_up_on_half_their_candles(shared_replay: ReplayFeed) -> None:
    kwargs = {"exchange": "binanceusdm", "symbol": "XRP/USDT:USDT", "timeframe": "1h"}
    rows = _rows("binanceusdm_XRP-USDT-USDT_1h.csv")
    assert shared_replay.warmup_for(len(rows)) == 50
    expected_index = 50 + (to_epoch_seconds(SLOT) // 15) % 50
    assert shared_replay.market_time(slot=SLOT, **kwargs) == datetime.fromtimestamp(
        int(rows[expected_index][0]) / 1000, UTC
    )


def test_unknown_markets_are_named(shared_replay: ReplayFeed) -> None:
    with pytest.raises(UnknownMarketError, match="kraken"):
        shared_replay.markets(exchange="kraken")
    with pytest.raises(UnknownMarketError, match="DOGE/BTC"):
        shared_replay.market_time(exchange="binance", symbol="DOGE/BTC", timeframe="5m", slot=SLOT)
    with pytest.raises(UnknownMarketError, match="has 1h"):
        shared_replay.fetch_ohlcv(exchange="coinbase", symbol="BTC/USD", timeframe="4h", until=SLOT, limit=5)


def test_naive_slots_are_refused(shared_replay: ReplayFeed) -> None:
    with pytest.raises(ValueError, match="aware"):
        shared_replay.market_time(
            exchange="coinbase",
            symbol="BTC/USD",
            timeframe="1h",
            slot=datetime(2025, 1, 1),  # noqa: DTZ001
        )


def test_malformed_files_fail_with_the_line(tmp_path: Path) -> None:
    (tmp_path / "kraken_ETH-EUR_1h.csv").write_text(
        "timestamp,open,high,low,close,volume\n1499997600000,1,2,0.5,1.5,10\n1500001200000,1.5,2,1,abc,10\n"
    )
    feed = ReplayFeed(tmp_path, candle_seconds=15, warmup=1)
    with pytest.raises(PermanentFeedError, match="line 3"):
        feed.fetch_ohlcv(exchange="kraken", symbol="ETH/EUR", timeframe="1h", until=SLOT, limit=5)
    (tmp_path / "kraken_BTC-EUR_1h.csv").write_text(
        "timestamp,open,high,low,close,volume\n1499997600000,1,2,0.5,1.5,10\n1499997600000,1,2,0.5,1.5,10\n"
    )
    feed = ReplayFeed(tmp_path, candle_seconds=15, warmup=1)
    with pytest.raises(PermanentFeedError, match="increase"):
        feed.fetch_ohlcv(exchange="kraken", symbol="BTC/EUR", timeframe="1h", until=SLOT, limit=5)
