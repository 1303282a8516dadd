"""Market data services: shared candle fetches, the market snapshot, what the feed offers.

Market data is fetched per market, not per bot. `candles_for_slot` maps a slot to the feed's
market time (the latest closed candle) and fetches once per (feed, exchange, symbol, timeframe,
market time) for every bot, worker and process together:

1. a per-process memo (the candles of one closed market time never change);
2. Redis (`REDIS_URL`): the candles as JSON, kept `CACHE_TTL_SECONDS`;
3. on a miss, a Redis lock per key: one caller fetches from the feed, upserts into `Candle` and
   fills the cache while the others wait on the lock, then read the cache. A failed fetch is
   cached for `ERROR_TTL_SECONDS`, so the waiters get the same error instead of each hitting a
   failing exchange in turn.

When Redis itself is unreachable the fetch goes straight to the feed: slower, never wrong.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import redis
from django.conf import settings
from django.db import DatabaseError, transaction

from core.redis import redis_client
from marketdata.exceptions import FeedError, PermanentFeedError, TransientFeedError, UnknownMarketError
from marketdata.feeds import Feed, get_feed
from marketdata.indicators import compute_indicators, decimal_text, resample
from marketdata.models import Candle
from marketdata.timeframes import from_ms, higher_timeframe, timeframe_seconds, to_ms
from marketdata.types import CandleData, MarketInfo, MarketSnapshot, SymbolMarket

logger = logging.getLogger(__name__)

CACHE_PREFIX = "ta:md"
# Long enough for every bot of a slot and a retried cycle to hit; a closed candle never changes.
CACHE_TTL_SECONDS = 900
ERROR_TTL_SECONDS = 5
# The lock expires on its own if its holder dies mid-fetch; waiters give up after LOCK_WAIT.
LOCK_TIMEOUT_SECONDS = 60
LOCK_WAIT_SECONDS = 30
LOCK_POLL_SECONDS = 0.02
# Closed higher-timeframe candles the snapshot's context wants (EMA50 needs 50, MACD 34).
HIGHER_TIMEFRAME_CANDLES = 60
MEMO_SIZE = 64


# --- candles ---------------------------------------------------------------------------------


def candle_depth(timeframe: str) -> int:
    """Base candles a snapshot needs: MARKET_DATA_CANDLES, or more to build the higher timeframe."""
    depth = int(settings.MARKET_DATA_CANDLES)
    higher = higher_timeframe(timeframe)
    if higher is not None:
        factor = timeframe_seconds(higher) // timeframe_seconds(timeframe)
        # One bucket more than wanted: the oldest may start mid-bucket and be dropped.
        depth = max(depth, factor * (HIGHER_TIMEFRAME_CANDLES + 1))
    return depth


def market_time_for_slot(
    *, exchange: str, symbol: str, timeframe: str, slot: datetime, feed: Feed | None = None
) -> datetime:
    """Open time of the latest closed candle a cycle for `slot` sees."""
    feed = feed or get_feed()
    try:
        return feed.market_time(exchange=exchange, symbol=symbol, timeframe=timeframe, slot=slot)
    except ValueError as exc:
        raise PermanentFeedError(str(exc)) from None


def candles_for_slot(
    *,
    exchange: str,
    symbol: str,
    timeframe: str,
    slot: datetime,
    limit: int | None = None,
    feed: Feed | None = None,
) -> list[CandleData]:
    """The last `limit` (default MARKET_DATA_CANDLES) closed candles at `slot`, oldest first.

    Fetched once per (exchange, symbol, timeframe, market time) for every caller (see the module
    docstring) and upserted into `Candle`. Raises FeedError (Transient/Permanent).
    """
    feed = feed or get_feed()
    wanted = int(limit) if limit is not None else int(settings.MARKET_DATA_CANDLES)
    if wanted < 1:
        raise ValueError("limit must be at least 1")
    market_time = market_time_for_slot(exchange=exchange, symbol=symbol, timeframe=timeframe, slot=slot, feed=feed)
    key = f"{CACHE_PREFIX}:{feed.name}:candles:{exchange}:{symbol}:{timeframe}:{to_ms(market_time)}"
    # Fetch at least the snapshot's depth, so the snapshot and smaller readers share one fetch.
    fetch_limit = max(wanted, candle_depth(timeframe))

    memo = _memo_get(key)
    if memo is not None and memo[0] >= wanted:
        return list(memo[1][-wanted:])

    def produce() -> dict[str, Any]:
        candles = feed.fetch_ohlcv(
            exchange=exchange, symbol=symbol, timeframe=timeframe, until=market_time, limit=fetch_limit
        )
        candles_upsert(exchange=exchange, symbol=symbol, timeframe=timeframe, candles=candles)
        return {"limit": fetch_limit, "candles": [_encode_candle(c) for c in candles]}

    entry = _shared_fetch(key, produce=produce, satisfies=lambda cached: int(cached["limit"]) >= wanted)
    candles = tuple(_decode_candle(row) for row in entry["candles"])
    _memo_put(key, (int(entry["limit"]), candles))
    return list(candles[-wanted:])


def funding_for_slot(
    *, exchange: str, symbol: str, timeframe: str, slot: datetime, feed: Feed | None = None
) -> Decimal | None:
    """The funding rate of a perpetual as of the latest closed candle at `slot`, or None.

    Shared like the candles: a live exchange's rate moves between calls, and every bot of a slot
    must see the same one.
    """
    feed = feed or get_feed()
    market_time = market_time_for_slot(exchange=exchange, symbol=symbol, timeframe=timeframe, slot=slot, feed=feed)
    key = f"{CACHE_PREFIX}:{feed.name}:funding:{exchange}:{symbol}:{timeframe}:{to_ms(market_time)}"
    memo = _memo_get(key)
    if memo is not None:
        return memo[1][0] if memo[1] else None
    # Known at the close of the latest candle.
    as_of = market_time + timedelta(seconds=timeframe_seconds(timeframe))

    def produce() -> dict[str, Any]:
        rate = feed.funding_rate(exchange=exchange, symbol=symbol, at=as_of)
        return {"rate": None if rate is None else str(rate)}

    entry = _shared_fetch(key, produce=produce, satisfies=lambda cached: True)
    rate = None if entry["rate"] is None else Decimal(entry["rate"])
    _memo_put(key, (0, (rate,) if rate is not None else ()))
    return rate


def candles_upsert(*, exchange: str, symbol: str, timeframe: str, candles: Iterable[CandleData]) -> int:
    """Insert or update candles in `Candle` (keyed by exchange, symbol, timeframe, open time)."""
    rows = [
        Candle(
            exchange=exchange,
            symbol=symbol,
            timeframe=timeframe,
            open_time=c.open_time,
            open=c.open,
            high=c.high,
            low=c.low,
            close=c.close,
            volume=c.volume,
        )
        for c in candles
    ]
    if not rows:
        return 0
    try:
        # A savepoint: a failed write must not break a caller's transaction, and the candles are
        # still returned and cached (storing them is the record, not the cycle's input).
        with transaction.atomic():
            Candle.objects.bulk_create(
                rows,
                batch_size=1000,
                update_conflicts=True,
                unique_fields=["exchange", "symbol", "timeframe", "open_time"],
                update_fields=["open", "high", "low", "close", "volume"],
            )
    except DatabaseError:
        logger.exception("could not store %d %s %s %s candles", len(rows), exchange, symbol, timeframe)
        return 0
    return len(rows)


# --- snapshot --------------------------------------------------------------------------------


def snapshot_build(
    *, exchange: str, symbols: list[str], timeframe: str, slot: datetime, feed: Feed | None = None
) -> MarketSnapshot:
    """The market every bot trading these symbols in this slot sees, with its canonical hash.

    `data` depends only on the candles (and funding) at the slot's market time, never on the
    process or the order of `symbols`, so the same (exchange, symbols, timeframe, slot) gives a
    byte-identical `data` and the same `hash` everywhere.
    """
    feed = feed or get_feed()
    if not symbols:
        raise ValueError("a snapshot needs at least one symbol")
    infos = market_infos(exchange=exchange, symbols=symbols, feed=feed)
    keep = int(settings.MARKET_DATA_CANDLES)
    depth = candle_depth(timeframe)
    higher = higher_timeframe(timeframe)
    markets: dict[str, SymbolMarket] = {}
    entries: dict[str, dict[str, Any]] = {}
    for symbol in sorted(set(symbols)):
        candles = candles_for_slot(
            exchange=exchange, symbol=symbol, timeframe=timeframe, slot=slot, limit=depth, feed=feed
        )
        if not candles:
            raise PermanentFeedError(f"no closed {timeframe} candles of {symbol} on {exchange} at {slot.isoformat()}")
        funding = (
            funding_for_slot(exchange=exchange, symbol=symbol, timeframe=timeframe, slot=slot, feed=feed)
            if infos[symbol].contract
            else None
        )
        base = candles[-keep:]
        # Indicators over exactly the candles recorded on the snapshot, so anyone can redo them.
        entry: dict[str, Any] = {
            "price": decimal_text(base[-1].close),
            "market_time": _iso(base[-1].open_time),
            "funding_rate": decimal_text(funding),
            **compute_indicators(base).as_json(),
            "higher_timeframe": None,
        }
        if higher is not None:
            context = resample(candles, source=timeframe, target=higher)[-keep:]
            entry["higher_timeframe"] = {"timeframe": higher, **compute_indicators(context).as_json()}
        entries[symbol] = entry
        markets[symbol] = SymbolMarket(symbol=symbol, info=infos[symbol], candles=tuple(base), funding_rate=funding)
    market_time = max(m.candles[-1].open_time for m in markets.values())
    data: dict[str, Any] = {
        "exchange": exchange,
        "timeframe": timeframe,
        "market_time": _iso(market_time),
        "series_order": "oldest_to_newest",
        "symbols": entries,
    }
    return MarketSnapshot(
        exchange=exchange,
        timeframe=timeframe,
        slot=slot,
        market_time=market_time,
        markets=markets,
        data=data,
        hash=snapshot_hash(data),
    )


def snapshot_hash(data: dict[str, Any]) -> str:
    """sha256 hex of the canonical JSON of a snapshot's data."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


# --- what the feed offers --------------------------------------------------------------------


def market_infos(*, exchange: str, symbols: list[str], feed: Feed | None = None) -> dict[str, MarketInfo]:
    """Precision and minimums of each symbol; UnknownMarketError names symbols the feed lacks."""
    feed = feed or get_feed()
    offered = feed.markets(exchange=exchange)
    missing = [s for s in symbols if s not in offered]
    if missing:
        raise UnknownMarketError(f"{feed.name} feed has no {', '.join(missing)} on {exchange}")
    return {s: offered[s] for s in symbols}


def available_symbols(*, exchange: str | None = None, feed: Feed | None = None) -> dict[str, list[str]]:
    """Exchange -> symbols the configured feed offers (one exchange, or every one it serves).

    With an exchange given, its errors propagate (UnknownMarketError for one the feed lacks);
    listing every exchange skips one that cannot be reached, with a warning.
    """
    feed = feed or get_feed()
    if exchange is not None:
        return {exchange: sorted(feed.markets(exchange=exchange))}
    result: dict[str, list[str]] = {}
    for name in feed.exchanges():
        try:
            result[name] = sorted(feed.markets(exchange=name))
        except FeedError as exc:
            logger.warning("cannot list the markets of %s: %s", name, exc)
    return result


def markets_now(*, exchange: str, symbols: list[str], timeframe: str, now: datetime) -> dict[str, SymbolMarket]:
    """Current markets for closing positions. Falls back to the last stored candle when the feed
    fails, so a stop never depends on the feed answering (its precision is then unknown: the
    quantity is not rounded away)."""
    try:
        snapshot = snapshot_build(exchange=exchange, symbols=symbols, timeframe=timeframe, slot=now)
        return dict(snapshot.markets)
    except FeedError as exc:
        logger.warning("feed failed (%s); closing at the last stored prices", exc)
    markets: dict[str, SymbolMarket] = {}
    for symbol in symbols:
        candle = (
            Candle.objects.filter(exchange=exchange, symbol=symbol, timeframe=timeframe).order_by("-open_time").first()
        )
        if candle is None:
            continue
        base, _, quote = symbol.partition("/")
        tiny = Decimal("1e-12")
        markets[symbol] = SymbolMarket(
            symbol=symbol,
            info=MarketInfo(symbol=symbol, base=base, quote=quote.split(":")[0], amount_step=tiny, price_step=tiny),
            candles=(
                CandleData(
                    open_time=candle.open_time,
                    open=candle.open,
                    high=candle.high,
                    low=candle.low,
                    close=candle.close,
                    volume=candle.volume,
                ),
            ),
        )
    return markets


def available_timeframes(*, exchange: str, symbol: str, feed: Feed | None = None) -> list[str]:
    """Timeframes the feed offers for this market, shortest first."""
    feed = feed or get_feed()
    return feed.timeframes(exchange=exchange, symbol=symbol)


# --- the shared fetch ------------------------------------------------------------------------


def _shared_fetch(
    key: str, *, produce: Callable[[], dict[str, Any]], satisfies: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """The cached entry under `key`, produced by exactly one caller at a time across processes."""
    client = redis_client()
    try:
        found = _read(client, key, satisfies)
        if found is not None:
            return found
        lock = client.lock(
            f"{key}:lock",
            timeout=LOCK_TIMEOUT_SECONDS,
            blocking_timeout=LOCK_WAIT_SECONDS,
            sleep=LOCK_POLL_SECONDS,
            raise_on_release_error=False,
        )
        acquired = lock.acquire()
    except redis.RedisError as exc:
        logger.warning("redis unavailable (%s); fetching %s without the shared cache", exc, key)
        return produce()
    try:
        if acquired:
            # Whoever held the lock before us has usually filled the cache by now.
            found = _read(client, key, satisfies)
            if found is not None:
                return found
        else:
            logger.warning("waited %ss for the fetch of %s; fetching it here", LOCK_WAIT_SECONDS, key)
        try:
            entry = produce()
        except FeedError as exc:
            kind = "transient" if isinstance(exc, TransientFeedError) else "permanent"
            _write(client, f"{key}:error", {"kind": kind, "message": str(exc)}, ERROR_TTL_SECONDS)
            raise
        _write(client, key, entry, CACHE_TTL_SECONDS)
        return entry
    finally:
        if acquired:
            try:
                lock.release()
            except redis.RedisError as exc:
                # The lock expires on its own; nothing is lost.
                logger.warning("could not release %s:lock: %s", key, exc)


def _read(client: redis.Redis, key: str, satisfies: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
    raw_entry, raw_error = client.mget([key, f"{key}:error"])
    if raw_entry is not None:
        entry: dict[str, Any] = json.loads(raw_entry)
        if satisfies(entry):
            return entry
    if raw_error is not None:
        error = json.loads(raw_error)
        cls = TransientFeedError if error.get("kind") == "transient" else PermanentFeedError
        raise cls(str(error.get("message")))
    return None


def _write(client: redis.Redis, key: str, value: dict[str, Any], ttl: int) -> None:
    try:
        client.set(key, json.dumps(value, separators=(",", ":")), ex=ttl)
    except redis.RedisError as exc:
        logger.warning("could not cache %s: %s", key, exc)


# Candles of a closed market time never change, so a process keeps the latest few in memory.
_memo: OrderedDict[str, tuple[int, tuple[Any, ...]]] = OrderedDict()
_memo_lock = threading.Lock()


def _memo_get(key: str) -> tuple[int, tuple[Any, ...]] | None:
    with _memo_lock:
        value = _memo.get(key)
        if value is not None:
            _memo.move_to_end(key)
        return value


def _memo_put(key: str, value: tuple[int, tuple[Any, ...]]) -> None:
    with _memo_lock:
        _memo[key] = value
        _memo.move_to_end(key)
        while len(_memo) > MEMO_SIZE:
            _memo.popitem(last=False)


def _encode_candle(candle: CandleData) -> list[Any]:
    # Decimals as strings: the round trip is exact, so cached candles equal fetched ones.
    return [
        to_ms(candle.open_time),
        str(candle.open),
        str(candle.high),
        str(candle.low),
        str(candle.close),
        str(candle.volume),
    ]


def _decode_candle(row: list[Any]) -> CandleData:
    return CandleData(
        open_time=from_ms(int(row[0])),
        open=Decimal(row[1]),
        high=Decimal(row[2]),
        low=Decimal(row[3]),
        close=Decimal(row[4]),
        volume=Decimal(row[5]),
    )


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
