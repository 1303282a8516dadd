"""What a US dollar is worth in another currency at a given market time, from market data.

The LLM bill is in US dollars; a bot's account is in its quote currency (USD, USDT, BTC, ...).
Converting the bill needs the rate at the time of the call, taken from candles:

1. USD itself: 1 (no lookup).
2. A dollar market of the currency, `<CUR>/USD`, then `<CUR>/USDT`, then `<CUR>/USDC`, on the
   bot's exchange first, then on each exchange of `LLM_COST_RATE_EXCHANGES`: the close of the
   latest candle at or before the market time, from the stored candles or else the feed (the
   candles fetched are stored). USDT and USDC prices are taken as dollars.
3. A USD stablecoin with no such market (`USDT` on Binance has no USDT/USD): 1, said so in the
   source ("par").
4. Otherwise there is no rate, and the converted figures are unknown (None), never guessed.

A stored candle counts only if the market time falls in it; the feed's newest closed candle also
if the market time falls in the candle after it (an exchange a candle behind). A stale price is no
rate at all. The returned `source` says which candle the rate came from; it is recorded on
each LLM call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings

from marketdata.exceptions import FeedError
from marketdata.feeds import Feed, get_feed
from marketdata.models import Candle
from marketdata.timeframes import timeframe_seconds

logger = logging.getLogger(__name__)

USD = "USD"
# Dollar-pegged quote currencies: their markets price a currency in dollars, and an account in
# one of them converts at par when no market prices the stablecoin itself.
USD_STABLECOINS = frozenset({"USDT", "USDC", "BUSD", "DAI", "TUSD", "USDP", "FDUSD", "PYUSD", "USDS"})
DOLLAR_QUOTES = ("USD", "USDT", "USDC")
RATE_PLACES = Decimal("1e-12")  # the precision of the stored rate (price columns)


@dataclass(frozen=True, slots=True)
class UsdRate:
    """Units of `currency` one US dollar buys, and where that figure came from."""

    currency: str
    per_usd: Decimal
    source: str


def usd_rate(
    *, currency: str, exchange: str, at: datetime, timeframe: str = "1h", feed: Feed | None = None
) -> UsdRate | None:
    """The rate of `currency` per US dollar at market time `at`, or None (see the module docstring).

    Never raises for missing data: a feed failure means no rate from that market.
    """
    currency = currency.upper()
    if currency == USD:
        return UsdRate(currency=USD, per_usd=Decimal(1), source="USD")
    exchanges = [exchange, *(e for e in settings.LLM_COST_RATE_EXCHANGES if e != exchange)]
    for venue in exchanges:
        for dollar in DOLLAR_QUOTES:
            if dollar == currency:
                continue
            symbol = f"{currency}/{dollar}"
            found = _close_at(exchange=venue, symbol=symbol, at=at, timeframe=timeframe, feed=feed)
            if found is None:
                continue
            close, candle_timeframe, open_time = found
            par = "" if dollar == USD else f", {dollar} at par with USD"
            return UsdRate(
                currency=currency,
                per_usd=(Decimal(1) / close).quantize(RATE_PLACES),
                source=f"{venue} {symbol} {candle_timeframe} close of {open_time:%Y-%m-%dT%H:%MZ}{par}",
            )
    if currency in USD_STABLECOINS:
        return UsdRate(currency=currency, per_usd=Decimal(1), source=f"{currency} at par with USD")
    return None


def _fresh(open_time: datetime, timeframe: str, at: datetime, *, candles: int = 1) -> bool:
    """Whether the candle holds `at` (candles=1), or is at most one candle before it (2)."""
    return open_time <= at < open_time + candles * timedelta(seconds=timeframe_seconds(timeframe))


def _close_at(
    *, exchange: str, symbol: str, at: datetime, timeframe: str, feed: Feed | None
) -> tuple[Decimal, str, datetime] | None:
    stored = (
        Candle.objects.filter(exchange=exchange, symbol=symbol, open_time__lte=at, open_time__gt=at - timedelta(days=2))
        .order_by("-open_time")
        .values_list("close", "timeframe", "open_time")[:8]
    )
    for close, candle_timeframe, open_time in stored:
        if close > 0 and _fresh(open_time, candle_timeframe, at):
            return close, candle_timeframe, open_time
    feed = feed or get_feed()
    for wanted in dict.fromkeys([timeframe, "1h", "1d"]):
        try:
            candles = feed.fetch_ohlcv(exchange=exchange, symbol=symbol, timeframe=wanted, until=at, limit=2)
        except FeedError as exc:
            logger.debug("no %s %s candles on %s for a rate: %s", wanted, symbol, exchange, exc)
            continue
        if not candles:
            continue
        from marketdata.services import candles_upsert

        candles_upsert(exchange=exchange, symbol=symbol, timeframe=wanted, candles=candles)
        last = candles[-1]
        # The feed's newest closed candle: one candle behind is still the time of the call (an
        # exchange that has not closed the hour yet).
        if last.close > 0 and _fresh(last.open_time, wanted, at, candles=2):
            return last.close, wanted, last.open_time
    return None
