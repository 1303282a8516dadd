"""The replay feed: recorded candles from CSV files, replayed on a deterministic clock.

Files live in `settings.REPLAY_DATA_DIR` and are named `<exchange>_<BASE>-<QUOTE>[-<SETTLE>]_<tf>.csv`
(header `timestamp,open,high,low,close,volume`, open time in UTC milliseconds, oldest first); the
ccxt symbol is `BASE/QUOTE`, or `BASE/QUOTE:SETTLE` for a perpetual. `<...>_<interval>_funding.csv`
(`timestamp,funding_rate`) holds the funding history of a perpetual.

The clock. A wall-clock slot maps to a candle index

    index = warmup + (slot_epoch_seconds // REPLAY_CANDLE_SECONDS) % (n_candles - warmup)

with `warmup = MARKET_DATA_CANDLES` (capped at half the file for short files), so indicators always
have `warmup` candles of history, identical slots give identical candles to every bot and worker,
and the market moves one candle every `REPLAY_CANDLE_SECONDS`. When the index passes the last
candle it wraps around to `warmup` again: the recording replays in a loop.

Gaps. Missing candles (Binance's ADA/BTC recording lacks 40) are filled on load the way freqtrade
does: the previous close carried as open, high, low and close, with zero volume. Indicators then
see a flat, volumeless stretch instead of two distant candles glued together.

Each file is read once per process, lazily and under a lock, so worker threads share it.
"""

from __future__ import annotations

import bisect
import csv
import logging
import re
import threading
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.conf import settings

from marketdata.exceptions import PermanentFeedError, UnknownMarketError
from marketdata.timeframes import from_ms, timeframe_seconds, to_epoch_seconds, to_ms
from marketdata.types import CandleData, MarketInfo

logger = logging.getLogger(__name__)

_FILE_NAME = re.compile(
    r"^(?P<exchange>[a-z0-9]+)_(?P<base>[A-Z0-9]+)-(?P<quote>[A-Z0-9]+)(?:-(?P<settle>[A-Z0-9]+))?"
    r"_(?P<timeframe>[1-9][0-9]*[smhdw])(?P<funding>_funding)?\.csv$"
)


@dataclass(frozen=True, slots=True)
class MarketRules:
    amount_step: Decimal
    min_amount: Decimal
    min_notional: Decimal


# The CSVs record prices, not trading rules, so lot sizes are documented defaults taken from each
# exchange's published rules for these markets (Binance LOT_SIZE/NOTIONAL filters, Coinbase
# base_increment and min_market_funds). The price step is derived from the data instead.
MARKET_RULES: dict[tuple[str, str], MarketRules] = {
    ("coinbase", "BTC/USD"): MarketRules(Decimal("0.00000001"), Decimal("0.00000001"), Decimal("1")),
    ("binance", "ETH/BTC"): MarketRules(Decimal("0.0001"), Decimal("0.0001"), Decimal("0.0001")),
    ("binance", "ADA/BTC"): MarketRules(Decimal("1"), Decimal("1"), Decimal("0.0001")),
    ("binanceusdm", "XRP/USDT:USDT"): MarketRules(Decimal("0.1"), Decimal("0.1"), Decimal("5")),
}
# Any other recorded market: satoshi-sized lots and no minimums.
DEFAULT_RULES = MarketRules(Decimal("0.00000001"), Decimal(0), Decimal(0))


@dataclass(frozen=True, slots=True)
class _Series:
    candles: tuple[CandleData, ...]
    open_ms: tuple[int, ...]  # for bisect
    price_decimals: int  # most decimals seen in a price
    filled: int  # candles added to fill gaps


@dataclass(frozen=True, slots=True)
class _Funding:
    times_ms: tuple[int, ...]
    rates: tuple[Decimal, ...]


@dataclass(frozen=True, slots=True)
class _MarketFiles:
    exchange: str
    symbol: str
    base: str
    quote: str
    contract: bool
    candles: dict[str, Path]  # timeframe -> file
    funding: Path | None


class ReplayFeed:
    """Recorded candles on a deterministic clock (see the module docstring)."""

    name = "replay"

    def __init__(
        self, data_dir: Path | str | None = None, *, candle_seconds: int | None = None, warmup: int | None = None
    ) -> None:
        # None reads the setting at call time, so one cached instance follows the settings.
        self._data_dir = Path(data_dir) if data_dir is not None else None
        self._candle_seconds = candle_seconds
        self._warmup = warmup
        self._index: dict[tuple[str, str], _MarketFiles] | None = None
        self._series: dict[Path, _Series] = {}
        self._funding: dict[Path, _Funding] = {}
        # One lock for loading: a file is parsed once even when many threads ask at once.
        self._lock = threading.Lock()

    # --- the Feed interface ------------------------------------------------------------------

    def exchanges(self) -> list[str]:
        return sorted({exchange for exchange, _ in self._files()})

    def markets(self, *, exchange: str) -> dict[str, MarketInfo]:
        files = [f for (ex, _), f in sorted(self._files().items()) if ex == exchange]
        if not files:
            raise UnknownMarketError(
                f"the replay feed has no data for exchange {exchange!r} (it has: {', '.join(self.exchanges())})"
            )
        return {f.symbol: self._market_info(f) for f in files}

    def timeframes(self, *, exchange: str, symbol: str) -> list[str]:
        files = self._market(exchange, symbol)
        return sorted(files.candles, key=timeframe_seconds)

    def market_time(self, *, exchange: str, symbol: str, timeframe: str, slot: datetime) -> datetime:
        series = self._load(exchange, symbol, timeframe)
        return series.candles[self.candle_index(series_length=len(series.candles), slot=slot)].open_time

    def fetch_ohlcv(
        self, *, exchange: str, symbol: str, timeframe: str, until: datetime, limit: int
    ) -> list[CandleData]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        series = self._load(exchange, symbol, timeframe)
        end = bisect.bisect_right(series.open_ms, to_ms(until))
        return list(series.candles[max(0, end - limit) : end])

    def funding_rate(self, *, exchange: str, symbol: str, at: datetime) -> Decimal | None:
        files = self._market(exchange, symbol)
        if files.funding is None:
            return None
        funding = self._load_funding(files.funding)
        position = bisect.bisect_right(funding.times_ms, to_ms(at))
        return funding.rates[position - 1] if position else None

    # --- the clock ---------------------------------------------------------------------------

    def candle_index(self, *, series_length: int, slot: datetime) -> int:
        """The candle a slot sees: deterministic, one step per REPLAY_CANDLE_SECONDS, wrapping around."""
        seconds = self._candle_seconds or int(settings.REPLAY_CANDLE_SECONDS)
        warmup = self.warmup_for(series_length)
        return warmup + (to_epoch_seconds(slot) // seconds) % (series_length - warmup)

    def warmup_for(self, series_length: int) -> int:
        """Candles of history before the first replayed one; half the file when it is shorter."""
        if series_length < 2:
            raise PermanentFeedError("a replay file needs at least two candles")
        wanted = self._warmup if self._warmup is not None else int(settings.MARKET_DATA_CANDLES)
        return min(wanted, series_length // 2)

    def gap_filled(self, *, exchange: str, symbol: str, timeframe: str) -> int:
        """How many candles were added on load to fill gaps in this recording."""
        return self._load(exchange, symbol, timeframe).filled

    # --- loading -----------------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        return self._data_dir if self._data_dir is not None else Path(settings.REPLAY_DATA_DIR)

    def _files(self) -> dict[tuple[str, str], _MarketFiles]:
        with self._lock:
            if self._index is None:
                self._index = _scan(self.data_dir)
            return self._index

    def _market(self, exchange: str, symbol: str) -> _MarketFiles:
        files = self._files().get((exchange, symbol))
        if files is None:
            offered = sorted(s for ex, s in self._files() if ex == exchange)
            where = f"offers {', '.join(offered)}" if offered else "has no such exchange"
            raise UnknownMarketError(f"the replay feed has no {symbol!r} on {exchange!r} (it {where})")
        return files

    def _load(self, exchange: str, symbol: str, timeframe: str) -> _Series:
        files = self._market(exchange, symbol)
        path = files.candles.get(timeframe)
        if path is None:
            raise UnknownMarketError(
                f"the replay feed has no {timeframe} candles for {symbol} on {exchange} "
                f"(it has {', '.join(sorted(files.candles, key=timeframe_seconds))})"
            )
        with self._lock:
            series = self._series.get(path)
            if series is None:
                series = _read_candles(path, timeframe_seconds(timeframe) * 1000)
                self._series[path] = series
                if series.filled:
                    logger.info("replay: filled %d missing candles in %s", series.filled, path.name)
            return series

    def _load_funding(self, path: Path) -> _Funding:
        with self._lock:
            funding = self._funding.get(path)
            if funding is None:
                funding = _read_funding(path)
                self._funding[path] = funding
            return funding

    def _market_info(self, files: _MarketFiles) -> MarketInfo:
        decimals = max(self._load(files.exchange, files.symbol, tf).price_decimals for tf in files.candles)
        rules = MARKET_RULES.get((files.exchange, files.symbol), DEFAULT_RULES)
        return MarketInfo(
            symbol=files.symbol,
            base=files.base,
            quote=files.quote,
            amount_step=rules.amount_step,
            price_step=Decimal(1).scaleb(-decimals),
            min_amount=rules.min_amount,
            min_notional=rules.min_notional,
            contract=files.contract,
        )


def _scan(data_dir: Path) -> dict[tuple[str, str], _MarketFiles]:
    if not data_dir.is_dir():
        raise PermanentFeedError(f"REPLAY_DATA_DIR {str(data_dir)!r} is not a directory")
    candles: dict[tuple[str, str], dict[str, Path]] = {}
    funding: dict[tuple[str, str], Path] = {}
    parts: dict[tuple[str, str], tuple[str, str, bool]] = {}
    for path in sorted(data_dir.glob("*.csv")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            logger.warning("replay: ignoring %s (expected <exchange>_<BASE>-<QUOTE>[-<SETTLE>]_<tf>.csv)", path.name)
            continue
        base, quote, settle = match["base"], match["quote"], match["settle"]
        symbol = f"{base}/{quote}:{settle}" if settle else f"{base}/{quote}"
        key = (match["exchange"], symbol)
        parts[key] = (base, quote, settle is not None)
        if match["funding"]:
            funding[key] = path
        else:
            candles.setdefault(key, {})[match["timeframe"]] = path
    index: dict[tuple[str, str], _MarketFiles] = {}
    for key, by_timeframe in candles.items():
        base, quote, contract = parts[key]
        index[key] = _MarketFiles(key[0], key[1], base, quote, contract, by_timeframe, funding.get(key))
    return index


def _decimal(text: str, path: Path, line: int) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise PermanentFeedError(f"{path.name} line {line}: {text!r} is not a number") from None
    if not value.is_finite():
        raise PermanentFeedError(f"{path.name} line {line}: {text!r} is not a finite number")
    return value


def _timestamp(text: str, path: Path, line: int) -> int:
    try:
        return int(text)
    except ValueError:
        raise PermanentFeedError(f"{path.name} line {line}: timestamp {text!r} is not integer milliseconds") from None


def _read_candles(path: Path, step_ms: int) -> _Series:
    candles: list[CandleData] = []
    decimals = 0
    filled = 0
    previous_ms: int | None = None
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header != ["timestamp", "open", "high", "low", "close", "volume"]:
            raise PermanentFeedError(f"{path.name}: expected the header timestamp,open,high,low,close,volume")
        for line, row in enumerate(reader, start=2):
            if len(row) != 6:
                raise PermanentFeedError(f"{path.name} line {line}: expected 6 columns, got {len(row)}")
            open_ms = _timestamp(row[0], path, line)
            if open_ms % step_ms:
                raise PermanentFeedError(f"{path.name} line {line}: {open_ms} is not aligned to the timeframe")
            if previous_ms is not None:
                if open_ms <= previous_ms:
                    raise PermanentFeedError(f"{path.name} line {line}: timestamps must increase")
                # Fill a gap with flat, volumeless candles at the previous close (freqtrade's way).
                last_close = candles[-1].close
                for missing_ms in range(previous_ms + step_ms, open_ms, step_ms):
                    candles.append(
                        CandleData(from_ms(missing_ms), last_close, last_close, last_close, last_close, Decimal(0))
                    )
                    filled += 1
            prices = [_decimal(text, path, line) for text in row[1:5]]
            for price in prices:
                exponent = price.as_tuple().exponent
                if isinstance(exponent, int):
                    decimals = max(decimals, -exponent)
            open_, high, low, close = prices
            candles.append(CandleData(from_ms(open_ms), open_, high, low, close, _decimal(row[5], path, line)))
            previous_ms = open_ms
    if len(candles) < 2:
        raise PermanentFeedError(f"{path.name}: a replay file needs at least two candles")
    return _Series(tuple(candles), tuple(to_ms(c.open_time) for c in candles), decimals, filled)


def _read_funding(path: Path) -> _Funding:
    times: list[int] = []
    rates: list[Decimal] = []
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        if next(reader, None) != ["timestamp", "funding_rate"]:
            raise PermanentFeedError(f"{path.name}: expected the header timestamp,funding_rate")
        for line, row in enumerate(reader, start=2):
            if len(row) != 2:
                raise PermanentFeedError(f"{path.name} line {line}: expected 2 columns, got {len(row)}")
            times.append(_timestamp(row[0], path, line))
            rates.append(_decimal(row[1], path, line))
    if times != sorted(times):
        raise PermanentFeedError(f"{path.name}: timestamps must increase")
    return _Funding(tuple(times), tuple(rates))
