"""`manage.py backfill_candles`: page through a feed's history and upsert it into `Candle`."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from marketdata.exceptions import FeedError, TransientFeedError
from marketdata.feeds import FEED_NAMES, Feed, get_feed
from marketdata.services import candles_upsert
from marketdata.timeframes import bucket_start, from_seconds, timeframe_seconds, to_epoch_seconds
from marketdata.types import CandleData

PAGE_SIZE = 1000
RETRIES = 3


def _date(value: str, option: str) -> datetime:
    try:
        return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise CommandError(f"{option} must be a date as YYYY-MM-DD, got {value!r}") from None


class Command(BaseCommand):
    help = (
        "Fetch candles from a market data feed for [--since, --until) (UTC dates) and upsert them into "
        "the Candle table. Re-running is harmless: existing candles are updated in place."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--exchange", required=True, help="ccxt exchange id, e.g. binance")
        parser.add_argument("--symbol", required=True, help="ccxt symbol, e.g. BTC/USDT or XRP/USDT:USDT")
        parser.add_argument("--timeframe", required=True, help="e.g. 5m, 1h, 1d")
        parser.add_argument("--since", required=True, help="first day, YYYY-MM-DD (UTC)")
        parser.add_argument("--until", help="day to stop before, YYYY-MM-DD (UTC; default: now)")
        parser.add_argument("--feed", choices=FEED_NAMES, help="market data feed (default: MARKET_DATA_FEED)")
        parser.add_argument("--page-size", type=int, default=PAGE_SIZE, help="candles per request")

    def handle(self, *args: Any, **options: Any) -> None:
        exchange: str = options["exchange"]
        symbol: str = options["symbol"]
        timeframe: str = options["timeframe"]
        since = _date(options["since"], "--since")
        until = _date(options["until"], "--until") if options["until"] else datetime.now(UTC)
        if since >= until:
            raise CommandError(f"--since ({since:%Y-%m-%d}) must be before --until ({until:%Y-%m-%d})")
        page_size: int = options["page_size"]
        if page_size < 1:
            raise CommandError("--page-size must be at least 1")
        feed = get_feed(options["feed"] or str(settings.MARKET_DATA_FEED))
        try:
            offered = feed.timeframes(exchange=exchange, symbol=symbol)
        except FeedError as exc:
            raise CommandError(str(exc)) from None
        if timeframe not in offered:
            raise CommandError(
                f"the {feed.name} feed has no {timeframe} candles for {symbol} on {exchange} "
                f"(it has {', '.join(offered) or 'none'})"
            )

        period = timeframe_seconds(timeframe)
        # Windows of `page_size` candles from the first candle at or after --since to the last one
        # opening before --until.
        first = bucket_start(to_epoch_seconds(since) + period - 1, period)
        last = bucket_start(to_epoch_seconds(until) - 1, period)
        if first > last:
            raise CommandError("the range holds no complete candle of this timeframe")
        fetched = stored = 0
        with tqdm(total=(last - first) // period + 1, unit="candle", disable=options["verbosity"] == 0) as bar:
            start = first
            while start <= last:
                end = min(start + (page_size - 1) * period, last)
                candles = [
                    c
                    for c in self._fetch(feed, exchange, symbol, timeframe, from_seconds(end), page_size)
                    if to_epoch_seconds(c.open_time) >= start
                ]
                fetched += len(candles)
                stored += candles_upsert(exchange=exchange, symbol=symbol, timeframe=timeframe, candles=candles)
                bar.update((end - start) // period + 1)
                start = end + period
        if fetched and stored != fetched:
            raise CommandError(f"fetched {fetched} candles but could only store {stored}; see the log")
        self.stdout.write(
            self.style.SUCCESS(
                f"{stored} {timeframe} candles of {symbol} on {exchange} stored from the {feed.name} feed "
                f"({from_seconds(first):%Y-%m-%d %H:%M} .. {from_seconds(last):%Y-%m-%d %H:%M} UTC)"
            )
        )

    def _fetch(
        self, feed: Feed, exchange: str, symbol: str, timeframe: str, until: datetime, limit: int
    ) -> list[CandleData]:
        for attempt in range(RETRIES + 1):
            try:
                return feed.fetch_ohlcv(exchange=exchange, symbol=symbol, timeframe=timeframe, until=until, limit=limit)
            except TransientFeedError as exc:
                if attempt == RETRIES:
                    raise CommandError(f"giving up after {RETRIES + 1} attempts: {exc}") from None
                delay = 2**attempt
                self.stderr.write(f"{exc}; retrying in {delay}s")
                time.sleep(delay)
            except FeedError as exc:
                raise CommandError(str(exc)) from None
        raise AssertionError("unreachable")  # the loop returns or raises
