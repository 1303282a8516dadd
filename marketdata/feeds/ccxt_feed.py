"""The live feed: public market data through the ccxt client (no API key needed).

One ccxt instance per exchange id per process, used under that instance's lock: ccxt's sync
instances are not thread-safe, and one shared instance keeps `enableRateLimit` honest (per-thread
instances would each believe they had the whole rate budget). Market data is fetched once per
candle for every bot (marketdata.services caches it in Redis), so serialising calls per exchange
costs little.

Only closed candles are returned: `market_time(slot)` is the open time of the last candle that
had closed at `slot`, and candles still forming at the time of the call are dropped.

ccxt errors are mapped to the feed's: OperationFailed (NetworkError, RequestTimeout,
RateLimitExceeded/DDoSProtection, ExchangeNotAvailable, BadResponse) -> TransientFeedError; any
other ccxt error (BadSymbol, ExchangeError, ...) and an unknown exchange id -> PermanentFeedError.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any, TypeVar

import ccxt
from django.conf import settings

from marketdata.exceptions import PermanentFeedError, TransientFeedError, UnknownMarketError
from marketdata.timeframes import (
    bucket_start,
    from_ms,
    from_seconds,
    is_supported,
    timeframe_seconds,
    to_epoch_seconds,
    to_ms,
)
from marketdata.types import CandleData, MarketInfo

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Exchanges `exchanges()` lists (for `available_symbols()` without an exchange) when the
# MARKET_DATA_EXCHANGES setting is absent.
DEFAULT_EXCHANGES = ("binance", "coinbase", "kraken")
# Candles per request when ccxt does not publish the exchange's maximum (features.fetchOHLCV.limit).
DEFAULT_PAGE_LIMIT = 500
# Markets (precision, minimums) change rarely; reload them this often.
MARKETS_TTL_SECONDS = 3600.0
# A step used when an exchange reports precision as significant digits, which has no fixed
# step; the risk manager still rounds, and the exchange rejects what it cannot take.
_FALLBACK_STEP = Decimal("0.00000001")


@dataclass
class _Client:
    exchange: Any  # a ccxt.Exchange
    lock: threading.Lock = field(default_factory=threading.Lock)
    markets_loaded_at: float | None = None


class CcxtFeed:
    """Live public OHLCV, markets and funding rates via ccxt."""

    name = "ccxt"

    def __init__(
        self,
        *,
        exchanges: Sequence[str] | None = None,
        timeout_ms: int = 10_000,
        exchange_config: Mapping[str, Mapping[str, Any]] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """`exchange_config` adds ccxt constructor options per exchange id (options, urls, ...)."""
        self._exchanges = list(exchanges) if exchanges is not None else None
        self._timeout_ms = timeout_ms
        self._exchange_config = dict(exchange_config or {})
        self._clock = clock or (lambda: datetime.now(UTC))
        self._clients: dict[str, _Client] = {}
        self._clients_lock = threading.Lock()

    # --- the Feed interface ------------------------------------------------------------------

    def exchanges(self) -> list[str]:
        if self._exchanges is not None:
            return sorted(self._exchanges)
        return sorted(getattr(settings, "MARKET_DATA_EXCHANGES", None) or DEFAULT_EXCHANGES)

    def markets(self, *, exchange: str) -> dict[str, MarketInfo]:
        client = self._client(exchange)
        markets = self._call(client, "load markets", lambda: self._load_markets(client))
        mode = client.exchange.precisionMode
        infos: dict[str, MarketInfo] = {}
        for symbol, market in markets.items():
            if market.get("active") is False:
                continue
            infos[symbol] = market_info_from_ccxt(market, precision_mode=mode)
        return infos

    def timeframes(self, *, exchange: str, symbol: str) -> list[str]:
        client = self._client(exchange)
        self._market(client, symbol)
        offered = client.exchange.timeframes or {}
        return sorted((tf for tf in offered if is_supported(tf)), key=timeframe_seconds)

    def market_time(self, *, exchange: str, symbol: str, timeframe: str, slot: datetime) -> datetime:
        """Open time of the last candle closed at `slot` (pure arithmetic, no request)."""
        period = _timeframe_seconds(timeframe)
        return from_seconds(bucket_start(to_epoch_seconds(slot), period) - period)

    def fetch_ohlcv(
        self, *, exchange: str, symbol: str, timeframe: str, until: datetime, limit: int
    ) -> list[CandleData]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        client = self._client(exchange)
        market = self._market(client, symbol)
        period_ms = _timeframe_seconds(timeframe) * 1000
        if timeframe not in (client.exchange.timeframes or {}):
            raise UnknownMarketError(f"{exchange} offers no {timeframe} candles")
        period = period_ms // 1000
        # A candle still forming now is not a candle yet (its close would change under the bot):
        # the range ends at the last closed one, so `limit` closed candles come back.
        closed_before_ms = to_ms(self._clock())
        last_closed_ms = (bucket_start(closed_before_ms // 1000, period) - period) * 1000
        until_ms = min(bucket_start(to_ms(until) // 1000, period) * 1000, last_closed_ms)
        page = _page_limit(client.exchange, market)
        rows: dict[int, list[Any]] = {}
        cursor = until_ms - (limit - 1) * period_ms
        # Page forward from the oldest candle wanted; each page starts after the last one seen.
        while cursor <= until_ms:
            wanted = min(page, (until_ms - cursor) // period_ms + 1)
            batch: list[list[Any]] = self._call(
                client,
                f"fetch {symbol} {timeframe} candles",
                partial(client.exchange.fetch_ohlcv, symbol, timeframe, since=cursor, limit=wanted),
            )
            if not batch:
                break
            for row in batch:
                rows[int(row[0])] = row
            last = int(batch[-1][0])
            if last < cursor:  # the exchange ignored `since`: nothing more to page through
                break
            cursor = last + period_ms
        candles = [
            _candle(row)
            for open_ms, row in sorted(rows.items())
            if open_ms <= until_ms and open_ms + period_ms <= closed_before_ms
        ]
        return candles[-limit:]

    def funding_rate(self, *, exchange: str, symbol: str, at: datetime) -> Decimal | None:
        """The exchange's current funding rate of a perpetual (None for spot or when not offered).

        `at` is not used: exchanges publish the live rate; marketdata.services caches it per
        candle so every bot of a slot sees the same value.
        """
        client = self._client(exchange)
        market = self._market(client, symbol)
        if not market.get("contract") or not client.exchange.has.get("fetchFundingRate"):
            return None
        data = self._call(client, f"fetch {symbol} funding rate", lambda: client.exchange.fetch_funding_rate(symbol))
        return _to_decimal(data.get("fundingRate"))

    # --- internals ---------------------------------------------------------------------------

    def _client(self, exchange: str) -> _Client:
        with self._clients_lock:
            client = self._clients.get(exchange)
            if client is None:
                if exchange not in ccxt.exchanges:
                    raise UnknownMarketError(f"ccxt knows no exchange {exchange!r}")
                config: dict[str, Any] = {"enableRateLimit": True, "timeout": self._timeout_ms}
                config.update(self._exchange_config.get(exchange, {}))
                client = _Client(getattr(ccxt, exchange)(config))
                self._clients[exchange] = client
            return client

    def _load_markets(self, client: _Client) -> dict[str, Any]:
        now = time.monotonic()
        stale = client.markets_loaded_at is None or now - client.markets_loaded_at > MARKETS_TTL_SECONDS
        markets = client.exchange.load_markets(reload=stale)
        if stale:
            client.markets_loaded_at = now
        return dict(markets)

    def _market(self, client: _Client, symbol: str) -> dict[str, Any]:
        markets = self._call(client, "load markets", lambda: self._load_markets(client))
        market = markets.get(symbol)
        if market is None:
            raise UnknownMarketError(f"{client.exchange.id} has no market {symbol!r}")
        return dict(market)

    def _call(self, client: _Client, what: str, call: Callable[[], T]) -> T:
        with client.lock, _mapped_errors(f"{client.exchange.id}: {what}"):
            return call()


@contextmanager
def _mapped_errors(what: str) -> Iterator[None]:
    try:
        yield
    except ccxt.OperationFailed as exc:
        logger.warning("%s failed (transient): %s: %s", what, type(exc).__name__, exc)
        raise TransientFeedError(f"{what} failed: {type(exc).__name__}: {exc}") from exc
    except ccxt.BaseError as exc:
        logger.warning("%s failed: %s: %s", what, type(exc).__name__, exc)
        raise PermanentFeedError(f"{what} failed: {type(exc).__name__}: {exc}") from exc


def _timeframe_seconds(timeframe: str) -> int:
    try:
        return timeframe_seconds(timeframe)
    except ValueError as exc:
        raise PermanentFeedError(str(exc)) from None


def _page_limit(exchange: Any, market: Mapping[str, Any]) -> int:
    """Most candles the exchange returns per request, from ccxt's `features` when it knows."""
    features = (exchange.features or {}).get(market.get("type") or "spot") or {}
    if "fetchOHLCV" not in features:
        features = features.get("linear" if market.get("linear") else "inverse") or {}
    limit = (features.get("fetchOHLCV") or {}).get("limit")
    return int(limit) if isinstance(limit, int | float) and limit > 0 else DEFAULT_PAGE_LIMIT


def _to_decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        # str() first: Decimal(0.1) would carry the float's binary expansion.
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _candle(row: Sequence[Any]) -> CandleData:
    values = [_to_decimal(v) for v in row[1:6]]
    if any(v is None for v in values[:4]):
        raise PermanentFeedError(f"candle {row!r} has no price")
    open_, high, low, close = (v for v in values[:4] if v is not None)
    return CandleData(from_ms(int(row[0])), open_, high, low, close, values[4] or Decimal(0))


def _step(value: Any, precision_mode: int) -> Decimal | None:
    """A ccxt precision value as a step: TICK_SIZE gives the step, DECIMAL_PLACES a digit count."""
    number = _to_decimal(value)
    if number is None:
        return None
    if precision_mode == ccxt.DECIMAL_PLACES:
        return Decimal(1).scaleb(-int(number))
    if precision_mode == ccxt.TICK_SIZE and number > 0:
        return number
    return None  # SIGNIFICANT_DIGITS: no fixed step exists


def market_info_from_ccxt(market: Mapping[str, Any], *, precision_mode: int) -> MarketInfo:
    """A ccxt market structure as a MarketInfo (precision in either TICK_SIZE or DECIMAL_PLACES mode)."""
    precision = market.get("precision") or {}
    limits = market.get("limits") or {}
    amount_step = _step(precision.get("amount"), precision_mode)
    price_step = _step(precision.get("price"), precision_mode)
    if amount_step is None or price_step is None:
        logger.info(
            "market %s has no usable precision (mode %s); using %s",
            market.get("symbol"),
            precision_mode,
            _FALLBACK_STEP,
        )
    return MarketInfo(
        symbol=str(market["symbol"]),
        base=str(market.get("base") or ""),
        quote=str(market.get("quote") or ""),
        amount_step=amount_step or _FALLBACK_STEP,
        price_step=price_step or _FALLBACK_STEP,
        min_amount=_to_decimal((limits.get("amount") or {}).get("min")) or Decimal(0),
        min_notional=_to_decimal((limits.get("cost") or {}).get("min")) or Decimal(0),
        contract=bool(market.get("contract")),
        contract_size=_to_decimal(market.get("contractSize")) or Decimal(1),
    )
