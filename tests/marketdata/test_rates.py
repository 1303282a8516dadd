"""Dollar rates from market data (marketdata.rates): stored candles first, then the feed; a stale
candle is no rate; stablecoins at par only without a market; otherwise no rate at all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from marketdata.models import Candle
from marketdata.rates import usd_rate

pytestmark = pytest.mark.django_db

AT = datetime(2018, 1, 20, 10, 35, tzinfo=UTC)  # inside Coinbase's and Binance's recordings


def candle(*, exchange: str, symbol: str, timeframe: str, open_time: datetime, close: str) -> None:
    price = Decimal(close)
    Candle.objects.create(
        exchange=exchange,
        symbol=symbol,
        timeframe=timeframe,
        open_time=open_time,
        open=price,
        high=price,
        low=price,
        close=price,
        volume=Decimal(1),
    )


def test_usd_is_one():
    rate = usd_rate(currency="USD", exchange="coinbase", at=AT)
    assert rate is not None and rate.per_usd == 1


def test_a_stored_candle_holding_the_market_time(settings):
    settings.LLM_COST_RATE_EXCHANGES = []
    candle(exchange="kraken", symbol="BTC/USD", timeframe="1h", open_time=AT.replace(minute=0), close="12500")

    rate = usd_rate(currency="BTC", exchange="kraken", at=AT)

    assert rate is not None and rate.per_usd == Decimal("0.00008")
    assert rate.source == "kraken BTC/USD 1h close of 2018-01-20T10:00Z"


def test_a_stored_candle_before_the_one_holding_the_time_is_not_used(settings):
    """The hour before is stored, the hour holding the market time is not: the feed answers."""
    settings.LLM_COST_RATE_EXCHANGES = []
    candle(
        exchange="coinbase",
        symbol="BTC/USD",
        timeframe="1h",
        open_time=AT.replace(minute=0) - timedelta(hours=1),
        close="1",
    )
    rate = usd_rate(currency="BTC", exchange="coinbase", at=AT)
    assert rate is not None and rate.source == "coinbase BTC/USD 1h close of 2018-01-20T10:00Z" and rate.per_usd < 1


def test_a_stale_candle_is_no_rate(settings):
    settings.LLM_COST_RATE_EXCHANGES = []
    candle(exchange="kraken", symbol="BTC/USD", timeframe="1h", open_time=AT - timedelta(hours=3), close="12500")
    # Kraken has no recording either: nothing at the time of the call.
    assert usd_rate(currency="BTC", exchange="kraken", at=AT) is None


def test_the_feed_and_then_the_fallback_exchanges(settings):
    # Binance's recording has ETH/BTC but no BTC/USD(T): Coinbase's BTC/USD 1h answers.
    settings.LLM_COST_RATE_EXCHANGES = ["coinbase"]
    rate = usd_rate(currency="BTC", exchange="binance", at=AT, timeframe="5m")
    assert rate is not None and rate.source.startswith("coinbase BTC/USD 1h close of 2018-01-20T10:00Z")
    stored = Candle.objects.get(exchange="coinbase", symbol="BTC/USD", timeframe="1h", open_time=AT.replace(minute=0))
    assert rate.per_usd == (1 / stored.close).quantize(Decimal("1e-12"))
    settings.LLM_COST_RATE_EXCHANGES = []
    Candle.objects.all().delete()
    assert usd_rate(currency="BTC", exchange="binance", at=AT, timeframe="5m") is None


def test_a_dollar_stablecoin_prefers_its_market_then_par(settings):
    settings.LLM_COST_RATE_EXCHANGES = []
    candle(exchange="kraken", symbol="USDT/USD", timeframe="1h", open_time=AT.replace(minute=0), close="0.998")
    rate = usd_rate(currency="USDT", exchange="kraken", at=AT)
    assert rate is not None and rate.per_usd == (Decimal(1) / Decimal("0.998")).quantize(Decimal("1e-12"))
    par = usd_rate(currency="USDT", exchange="binanceusdm", at=AT)
    assert par is not None and par.per_usd == 1 and par.source == "USDT at par with USD"


def test_an_unknown_currency_has_no_rate(settings):
    settings.LLM_COST_RATE_EXCHANGES = ["coinbase"]
    assert usd_rate(currency="XYZ", exchange="binance", at=AT) is None
