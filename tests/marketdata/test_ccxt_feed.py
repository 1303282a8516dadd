"""The ccxt feed against a local server speaking Binance's public REST API (spot and USD-M)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import ccxt
import pytest

from marketdata.exceptions import PermanentFeedError, TransientFeedError, UnknownMarketError
from marketdata.feeds.ccxt_feed import CcxtFeed, market_info_from_ccxt
from marketdata.feeds.replay import ReplayFeed
from marketdata.services import candles_for_slot
from marketdata.types import CandleData
from tests.marketdata.binance_server import BinanceServer, Fault
from tests.marketdata.conftest import CountingFeed

# "Now" for the feed: 2018-01-20 12:02:30 UTC, inside the 12:00 candle of the recorded ETH/BTC data.
NOW = datetime(2018, 1, 20, 12, 2, 30, tzinfo=UTC)
XRP_NOW = datetime(2021, 11, 21, 12, 2, 30, tzinfo=UTC)


def _feed(server: BinanceServer, *, now: datetime = NOW, timeout_ms: int = 5000) -> CcxtFeed:
    return CcxtFeed(
        exchanges=["binance", "binanceusdm"],
        timeout_ms=timeout_ms,
        clock=lambda: now,
        exchange_config={
            "binance": {
                "urls": {"api": server.ccxt_urls(ccxt.binance)},
                "options": {"fetchMarkets": {"types": ["spot"]}},
            },
            "binanceusdm": {"urls": {"api": server.ccxt_urls(ccxt.binanceusdm)}},
        },
    )


def _load(
    server: BinanceServer, replay: ReplayFeed, exchange: str, symbol: str, market_id: str, until: datetime
) -> list[CandleData]:
    # The recorded candles, served by the fake exchange up to and including the forming one.
    candles = replay.fetch_ohlcv(exchange=exchange, symbol=symbol, timeframe="5m", until=until, limit=100_000)
    server.klines[(market_id, "5m")] = candles
    return candles


def test_markets_come_from_exchange_info(binance: BinanceServer) -> None:
    feed = _feed(binance)
    markets = feed.markets(exchange="binance")
    assert sorted(markets) == ["BTC/USDT", "ETH/BTC"]
    eth = markets["ETH/BTC"]
    assert (eth.base, eth.quote, eth.contract) == ("ETH", "BTC", False)
    assert (eth.price_step, eth.amount_step, eth.min_amount, eth.min_notional) == (
        Decimal("0.00001"),
        Decimal("0.0001"),
        Decimal("0.0001"),
        Decimal("0.0001"),
    )
    xrp = feed.markets(exchange="binanceusdm")["XRP/USDT:USDT"]
    assert (xrp.contract, xrp.price_step, xrp.amount_step, xrp.min_notional, xrp.contract_size) == (
        True,
        Decimal("0.0001"),
        Decimal("0.1"),
        Decimal(5),
        Decimal(1),
    )
    assert "5m" in feed.timeframes(exchange="binance", symbol="ETH/BTC")
    assert "1M" not in feed.timeframes(exchange="binance", symbol="ETH/BTC")
    # Markets are loaded once per exchange, not per call.
    assert len(binance.paths("/api/v3/exchangeInfo")) == 1


def test_closed_candles_are_paged_and_the_forming_one_dropped(
    binance: BinanceServer, shared_replay: ReplayFeed
) -> None:
    recorded = _load(
        binance, shared_replay, "binance", "ETH/BTC", "ETHBTC", until=datetime(2018, 1, 20, 12, 0, tzinfo=UTC)
    )
    feed = _feed(binance)
    market_time = feed.market_time(exchange="binance", symbol="ETH/BTC", timeframe="5m", slot=NOW)
    assert market_time == datetime(2018, 1, 20, 11, 55, tzinfo=UTC)  # 12:00 has not closed at 12:02:30

    candles = feed.fetch_ohlcv(exchange="binance", symbol="ETH/BTC", timeframe="5m", until=market_time, limit=1200)
    assert len(candles) == 1200
    assert candles == recorded[-1201:-1]  # every value exactly as recorded, without the forming candle
    # Binance spot answers at most 1000 candles: two pages, the second starting after the first.
    pages = binance.paths("/api/v3/klines")
    assert [int(p["limit"]) for p in pages] == [1000, 200]
    assert int(pages[0]["startTime"]) == int((market_time - timedelta(minutes=5 * 1199)).timestamp() * 1000)
    assert int(pages[1]["startTime"]) == int((market_time - timedelta(minutes=5 * 199)).timestamp() * 1000)

    # Asking up to the forming candle still yields closed candles only.
    forming = feed.fetch_ohlcv(
        exchange="binance", symbol="ETH/BTC", timeframe="5m", until=datetime(2018, 1, 20, 12, 0, tzinfo=UTC), limit=3
    )
    assert [c.open_time for c in forming] == [
        market_time - timedelta(minutes=10),
        market_time - timedelta(minutes=5),
        market_time,
    ]


def test_futures_pages_follow_the_exchange_limit_and_funding_is_read(
    binance: BinanceServer, shared_replay: ReplayFeed
) -> None:
    _load(binance, shared_replay, "binanceusdm", "XRP/USDT:USDT", "XRPUSDT", until=XRP_NOW)
    binance.funding_rates["XRPUSDT"] = "0.00013046"
    feed = _feed(binance, now=XRP_NOW)
    until = feed.market_time(exchange="binanceusdm", symbol="XRP/USDT:USDT", timeframe="5m", slot=XRP_NOW)
    candles = feed.fetch_ohlcv(exchange="binanceusdm", symbol="XRP/USDT:USDT", timeframe="5m", until=until, limit=600)
    assert len(candles) == 600 and candles[-1].open_time == until
    assert [int(p["limit"]) for p in binance.paths("/fapi/v1/klines")] == [500, 100]  # USD-M: 500 per request
    assert feed.funding_rate(exchange="binanceusdm", symbol="XRP/USDT:USDT", at=XRP_NOW) == Decimal("0.00013046")
    assert feed.funding_rate(exchange="binance", symbol="ETH/BTC", at=XRP_NOW) is None  # spot: no request
    assert len(binance.paths("/fapi/v1/premiumIndex")) == 1


@pytest.mark.parametrize(
    "fault",
    [
        Fault(
            "/klines",
            429,
            {"code": -1003, "msg": "Too much request weight used; current limit is 6000 request weight per 1 MINUTE."},
            {"Retry-After": "30"},
        ),
        Fault("/klines", 502, "<html><body><h1>502 Bad Gateway</h1></body></html>"),
        # What Binance's load balancer answers while the API is down (ccxt maps the status: the
        # code-based mapping of JSON errors is keyed on Binance's own hostnames).
        Fault("/klines", 503, "<html><head><title>503 Service Temporarily Unavailable</title></head></html>"),
        Fault("/klines", 200, delay=2.0),
    ],
    ids=["429", "502", "503", "timeout"],
)
def test_transient_failures_are_transient(binance: BinanceServer, shared_replay: ReplayFeed, fault: Fault) -> None:
    _load(binance, shared_replay, "binance", "ETH/BTC", "ETHBTC", until=NOW)
    feed = _feed(binance, timeout_ms=500)
    feed.markets(exchange="binance")  # markets loaded before the fault
    binance.fail_next(fault)
    with pytest.raises(TransientFeedError):
        feed.fetch_ohlcv(exchange="binance", symbol="ETH/BTC", timeframe="5m", until=NOW, limit=10)


def test_unknown_symbols_and_exchanges_are_permanent(binance: BinanceServer) -> None:
    feed = _feed(binance)
    with pytest.raises(UnknownMarketError, match="DOGE/BTC"):
        feed.fetch_ohlcv(exchange="binance", symbol="DOGE/BTC", timeframe="5m", until=NOW, limit=10)
    assert binance.paths("/klines") == []
    # The exchange itself refusing the symbol (delisted since the markets were loaded).
    binance.fail_next(Fault("/klines", 400, {"code": -1121, "msg": "Invalid symbol."}))
    with pytest.raises(PermanentFeedError, match="Invalid symbol"):
        feed.fetch_ohlcv(exchange="binance", symbol="BTC/USDT", timeframe="5m", until=NOW, limit=10)
    with pytest.raises(PermanentFeedError, match="no exchange"):
        feed.markets(exchange="notanexchange")
    with pytest.raises(PermanentFeedError, match="timeframe"):
        feed.market_time(exchange="binance", symbol="ETH/BTC", timeframe="1M", slot=NOW)


@pytest.mark.django_db
def test_candles_for_slot_through_the_ccxt_feed(
    binance: BinanceServer, shared_replay: ReplayFeed, counting_feed: Callable[..., CountingFeed]
) -> None:
    _load(binance, shared_replay, "binance", "ETH/BTC", "ETHBTC", until=NOW)
    feed = counting_feed(_feed(binance))
    first = candles_for_slot(exchange="binance", symbol="ETH/BTC", timeframe="5m", slot=NOW, feed=feed)
    second = candles_for_slot(
        exchange="binance", symbol="ETH/BTC", timeframe="5m", slot=NOW + timedelta(seconds=90), feed=feed
    )
    assert first == second and len(first) == 200
    assert first[-1].open_time == datetime(2018, 1, 20, 11, 55, tzinfo=UTC)
    assert feed.fetches == 1


def test_market_time_aligns_like_the_exchange() -> None:
    feed = CcxtFeed(exchanges=["binance"])
    slot = datetime(2024, 5, 15, 13, 7, 12, tzinfo=UTC)  # a Wednesday
    assert feed.market_time(exchange="binance", symbol="BTC/USDT", timeframe="4h", slot=slot) == datetime(
        2024, 5, 15, 8, tzinfo=UTC
    )
    assert feed.market_time(exchange="binance", symbol="BTC/USDT", timeframe="1d", slot=slot) == datetime(
        2024, 5, 14, tzinfo=UTC
    )
    # Weekly candles open on Monday: the last closed one at this slot opened Monday 2024-05-06.
    assert feed.market_time(exchange="binance", symbol="BTC/USDT", timeframe="1w", slot=slot) == datetime(
        2024, 5, 6, tzinfo=UTC
    )


def test_precision_modes_become_steps() -> None:
    market = {
        "symbol": "BTC/EUR",
        "base": "BTC",
        "quote": "EUR",
        "precision": {"amount": 8, "price": 1},
        "limits": {"amount": {"min": 0.0001}, "cost": {"min": 0.5}},
        "contract": False,
    }
    info = market_info_from_ccxt(market, precision_mode=ccxt.DECIMAL_PLACES)
    assert (info.amount_step, info.price_step, info.min_amount, info.min_notional) == (
        Decimal("1E-8"),
        Decimal("0.1"),
        Decimal("0.0001"),
        Decimal("0.5"),
    )
    ticks = market_info_from_ccxt(
        {**market, "precision": {"amount": 1e-05, "price": 0.5}, "contract": True, "contractSize": 0.01},
        precision_mode=ccxt.TICK_SIZE,
    )
    assert (ticks.amount_step, ticks.price_step, ticks.contract, ticks.contract_size) == (
        Decimal("0.00001"),
        Decimal("0.5"),
        True,
        Decimal("0.01"),
    )
    assert ticks.round_price(Decimal("100.74")) == Decimal("100.5")
