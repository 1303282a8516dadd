"""Market data services: the shared fetch (Redis cache + lock), Candle upserts, the snapshot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from marketdata.exceptions import TransientFeedError, UnknownMarketError
from marketdata.feeds.replay import ReplayFeed
from marketdata.models import Candle
from marketdata.services import (
    available_symbols,
    available_timeframes,
    candle_depth,
    candles_for_slot,
    candles_upsert,
    market_infos,
    snapshot_build,
    snapshot_hash,
)
from marketdata.timeframes import to_epoch_seconds
from marketdata.types import CandleData, MarketInfo
from tests.marketdata.conftest import CountingFeed, delete_cache_keys

SLOT = datetime(2025, 3, 14, 9, 26, 45, tzinfo=UTC)
MakeFeed = Callable[..., CountingFeed]


def _slot_for_index(index: int, *, candles: int, warmup: int = 200) -> datetime:
    """A recent slot whose replay index is `index` (inverts the replay clock)."""
    steps = candles - warmup
    base = to_epoch_seconds(SLOT) // 15 // steps * steps
    return datetime.fromtimestamp((base + index - warmup) * 15, UTC)


# --- candles_for_slot ------------------------------------------------------------------------


@pytest.mark.django_db
def test_candles_for_slot_returns_closed_candles_and_stores_them(counting_feed: MakeFeed) -> None:
    feed = counting_feed()
    market_time = feed.market_time(exchange="coinbase", symbol="BTC/USD", timeframe="1h", slot=SLOT)
    candles = candles_for_slot(exchange="coinbase", symbol="BTC/USD", timeframe="1h", slot=SLOT, feed=feed)
    assert len(candles) == 200
    assert candles[-1].open_time == market_time
    # The fetch covers the snapshot's depth (1h -> 4h context: 4 x 61 candles), stored once.
    assert candle_depth("1h") == 244
    stored = Candle.objects.filter(exchange="coinbase", symbol="BTC/USD", timeframe="1h")
    assert stored.count() == 244
    latest = stored.get(open_time=market_time)
    assert (latest.open, latest.high, latest.low, latest.close, latest.volume) == (
        candles[-1].open,
        candles[-1].high,
        candles[-1].low,
        candles[-1].close,
        candles[-1].volume,
    )
    assert feed.fetches == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_callers_wait_for_one_fetch(counting_feed: MakeFeed) -> None:
    feed = counting_feed(delay=0.3)
    callers = 12
    barrier = threading.Barrier(callers)
    results: list[list[CandleData]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def call() -> None:
        try:
            barrier.wait()
            candles = candles_for_slot(exchange="binance", symbol="ETH/BTC", timeframe="5m", slot=SLOT, feed=feed)
            with lock:
                results.append(candles)
        except BaseException as exc:  # reported below
            with lock:
                errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=call) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(results) == callers
    assert feed.fetches == 1
    assert all(r == results[0] for r in results)
    assert Candle.objects.filter(exchange="binance", symbol="ETH/BTC", timeframe="5m").count() == candle_depth("5m")


@pytest.mark.django_db
def test_other_slots_in_the_same_candle_reuse_the_fetch_and_a_new_candle_fetches(counting_feed: MakeFeed) -> None:
    feed = counting_feed()
    kwargs: dict[str, Any] = {"exchange": "coinbase", "symbol": "BTC/USD", "timeframe": "1h", "feed": feed}
    first = candles_for_slot(slot=SLOT, **kwargs)
    again = candles_for_slot(slot=SLOT + timedelta(seconds=14), **kwargs)
    assert again == first and feed.fetches == 1
    moved = candles_for_slot(slot=SLOT + timedelta(seconds=15), **kwargs)
    assert feed.fetches == 2
    assert moved[-1].open_time == first[-1].open_time + timedelta(hours=1)
    assert moved[:-1] == first[1:]


@pytest.mark.django_db
def test_a_larger_limit_than_cached_fetches_again_then_serves_smaller_ones(counting_feed: MakeFeed) -> None:
    feed = counting_feed()
    kwargs: dict[str, Any] = {
        "exchange": "coinbase",
        "symbol": "BTC/USD",
        "timeframe": "1h",
        "slot": SLOT,
        "feed": feed,
    }
    assert len(candles_for_slot(limit=10, **kwargs)) == 10
    assert len(candles_for_slot(limit=500, **kwargs)) == 500
    assert len(candles_for_slot(limit=300, **kwargs)) == 300
    assert feed.fetches == 2


class FailingFeed(ReplayFeed):
    """The replay feed whose candle fetches fail like an exchange that is down."""

    def fetch_ohlcv(self, **kwargs: Any) -> list[CandleData]:
        raise TransientFeedError("binance: fetch candles failed: ExchangeNotAvailable: 503 Service Unavailable")


@pytest.mark.django_db
def test_a_failed_fetch_is_shared_briefly_instead_of_repeated(counting_feed: MakeFeed) -> None:
    feed = counting_feed(FailingFeed(candle_seconds=15, warmup=200))
    for _ in range(3):
        with pytest.raises(TransientFeedError, match="503"):
            candles_for_slot(exchange="binance", symbol="ETH/BTC", timeframe="5m", slot=SLOT, feed=feed)
    assert feed.fetches == 1


@pytest.mark.django_db
def test_without_redis_the_fetch_goes_straight_to_the_feed(counting_feed: MakeFeed, settings: Any) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/1"  # nothing listens there
    feed = counting_feed()
    candles = candles_for_slot(exchange="coinbase", symbol="BTC/USD", timeframe="1h", slot=SLOT, limit=5, feed=feed)
    assert len(candles) == 5 and feed.fetches == 1


@pytest.mark.django_db
def test_candle_upsert_is_idempotent_and_updates_in_place(shared_replay: ReplayFeed) -> None:
    until = shared_replay.market_time(exchange="binance", symbol="ADA/BTC", timeframe="5m", slot=SLOT)
    candles = shared_replay.fetch_ohlcv(exchange="binance", symbol="ADA/BTC", timeframe="5m", until=until, limit=50)
    kwargs: dict[str, Any] = {"exchange": "binance", "symbol": "ADA/BTC", "timeframe": "5m"}
    assert candles_upsert(candles=candles, **kwargs) == 50
    assert candles_upsert(candles=candles, **kwargs) == 50
    assert Candle.objects.filter(**kwargs).count() == 50
    revised = CandleData(
        candles[-1].open_time, candles[-1].open, candles[-1].high, candles[-1].low, Decimal("0.00005"), Decimal(7)
    )
    candles_upsert(candles=[revised], **kwargs)
    row = Candle.objects.get(open_time=revised.open_time, **kwargs)
    assert (row.close, row.volume) == (Decimal("0.00005"), Decimal(7))
    assert Candle.objects.filter(**kwargs).count() == 50


# --- snapshot_build --------------------------------------------------------------------------


@pytest.mark.django_db
def test_snapshot_holds_prices_indicators_series_and_context(counting_feed: MakeFeed) -> None:
    feed = counting_feed()
    snapshot = snapshot_build(exchange="binance", symbols=["ETH/BTC", "ADA/BTC"], timeframe="5m", slot=SLOT, feed=feed)
    data = snapshot.data
    assert set(data) == {"exchange", "timeframe", "market_time", "series_order", "symbols"}
    assert (data["exchange"], data["timeframe"], data["series_order"]) == ("binance", "5m", "oldest_to_newest")
    assert list(data["symbols"]) == ["ADA/BTC", "ETH/BTC"]
    eth = data["symbols"]["ETH/BTC"]
    market = snapshot.markets["ETH/BTC"]
    assert len(market.candles) == 200
    assert eth["price"] == str(market.candles[-1].close) == str(snapshot.price("ETH/BTC"))
    assert eth["funding_rate"] is None
    assert set(eth["indicators"]) == {
        "ema20", "ema50", "rsi7", "rsi14", "macd", "macd_signal", "macd_hist",
        "bb_upper", "bb_middle", "bb_lower", "atr3", "atr14", "volume", "volume_avg20", "volume_ratio",
    }  # fmt: skip
    assert all(isinstance(v, str) for v in eth["indicators"].values())
    assert {"close", "ema20", "rsi7", "rsi14", "macd", "volume"} <= set(eth["series"])
    assert all(len(values) == 10 for values in eth["series"].values())
    context = eth["higher_timeframe"]
    assert context["timeframe"] == "1h"
    assert set(context["indicators"]) == set(eth["indicators"])
    assert context["indicators"]["ema50"] is not None  # 720+ base candles give 60 closed hours
    assert snapshot.market_time == max(m.candles[-1].open_time for m in snapshot.markets.values())
    assert data["market_time"] == snapshot.market_time.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert snapshot.hash == snapshot_hash(data)
    json.dumps(data)  # JSON-ready as it is


@pytest.mark.django_db
def test_perpetual_snapshots_carry_the_funding_rate(counting_feed: MakeFeed) -> None:
    feed = counting_feed()
    slot = _slot_for_index(1500, candles=1999)  # 2021-11-20, after funding data begins
    snapshot = snapshot_build(exchange="binanceusdm", symbols=["XRP/USDT:USDT"], timeframe="5m", slot=slot, feed=feed)
    market_time = snapshot.market_time
    assert market_time == datetime(2021, 11, 20, 5, 0, tzinfo=UTC)  # candle 1500 of the file
    entry = snapshot.data["symbols"]["XRP/USDT:USDT"]
    expected = feed.inner.funding_rate(
        exchange="binanceusdm", symbol="XRP/USDT:USDT", at=market_time + timedelta(minutes=5)
    )
    assert expected is not None
    assert entry["funding_rate"] == str(expected)
    assert snapshot.markets["XRP/USDT:USDT"].funding_rate == expected
    assert snapshot.markets["XRP/USDT:USDT"].info.contract is True


@pytest.mark.django_db
def test_snapshot_is_identical_for_the_same_slot_and_differs_for_the_next(counting_feed: MakeFeed) -> None:
    feed = counting_feed()
    kwargs: dict[str, Any] = {"exchange": "binance", "timeframe": "5m", "feed": feed}
    first = snapshot_build(symbols=["ETH/BTC", "ADA/BTC"], slot=SLOT, **kwargs)
    second = snapshot_build(symbols=["ADA/BTC", "ETH/BTC"], slot=SLOT + timedelta(seconds=5), **kwargs)
    assert json.dumps(first.data) == json.dumps(second.data)
    assert first.hash == second.hash
    following = snapshot_build(symbols=["ETH/BTC", "ADA/BTC"], slot=SLOT + timedelta(seconds=15), **kwargs)
    assert following.hash != first.hash
    assert following.market_time == first.market_time + timedelta(minutes=5)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_snapshot_is_byte_identical_in_another_process(counting_feed: MakeFeed) -> None:
    here = counting_feed()
    snapshot = snapshot_build(exchange="binance", symbols=["ETH/BTC", "ADA/BTC"], timeframe="5m", slot=SLOT, feed=here)
    other_name = f"{here.name}-proc"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": _database_url(),
        "REDIS_URL": str(settings.REDIS_URL),
        "MARKET_DATA_CANDLES": "200",
        "PYTHONHASHSEED": "12345",  # a different string hashing than this process
    }
    try:
        completed = subprocess.run(
            [
                sys.executable,
                "-m",
                "tests.marketdata.snapshot_worker",
                other_name,
                "binance",
                "5m",
                SLOT.isoformat(),
                "ADA/BTC",
                "ETH/BTC",
            ],
            cwd=str(settings.BASE_DIR),
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        delete_cache_keys(other_name)
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["data"] == json.dumps(snapshot.data)
    assert result["hash"] == snapshot.hash


def _database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.mark.django_db
def test_unknown_symbols_are_refused(counting_feed: MakeFeed) -> None:
    with pytest.raises(UnknownMarketError, match="DOGE/BTC"):
        snapshot_build(
            exchange="binance", symbols=["ETH/BTC", "DOGE/BTC"], timeframe="5m", slot=SLOT, feed=counting_feed()
        )


# --- what the feed offers --------------------------------------------------------------------


def test_available_symbols_timeframes_and_market_infos(shared_replay: ReplayFeed) -> None:
    assert available_symbols(feed=shared_replay) == {
        "binance": ["ADA/BTC", "ETH/BTC"],
        "binanceusdm": ["XRP/USDT:USDT"],
        "coinbase": ["BTC/USD"],
    }
    assert available_symbols(exchange="coinbase", feed=shared_replay) == {"coinbase": ["BTC/USD"]}
    assert available_timeframes(exchange="binanceusdm", symbol="XRP/USDT:USDT", feed=shared_replay) == ["5m", "1h"]
    infos = market_infos(exchange="binance", symbols=["ETH/BTC"], feed=shared_replay)
    assert isinstance(infos["ETH/BTC"], MarketInfo) and infos["ETH/BTC"].symbol == "ETH/BTC"
    with pytest.raises(UnknownMarketError):
        available_symbols(exchange="kraken", feed=shared_replay)


def test_default_feed_follows_the_setting(settings: Any) -> None:
    from marketdata.feeds import get_feed

    settings.MARKET_DATA_FEED = "replay"
    assert get_feed().name == "replay" and get_feed() is get_feed("replay")
    assert get_feed("ccxt").name == "ccxt"
    with pytest.raises(ValueError, match="replay, ccxt"):
        get_feed("csv")
