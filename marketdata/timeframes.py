"""Timeframe arithmetic shared by the feeds, the resampler and the services (pure, no I/O).

Candles are aligned the way exchanges align them: a timeframe of N seconds opens at multiples of
N since the Unix epoch (so 4h candles open at 00:00, 04:00, ... UTC and daily ones at 00:00 UTC),
except weekly candles, which open on Monday 00:00 UTC (Binance, Coinbase, Kraken and ccxt agree).
Calendar months are not supported: they have no fixed length.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PATTERN = re.compile(r"^(?P<count>[1-9][0-9]*)(?P<unit>[smhdw])$")
WEEK_SECONDS = 604800
# 1970-01-01 was a Thursday; the first Monday 00:00 UTC is four days later.
_WEEK_ORIGIN_SECONDS = 4 * 86400
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# The context timeframe shown beside each base timeframe (computed from the base candles).
HIGHER_TIMEFRAMES: dict[str, str] = {
    "1m": "15m",
    "5m": "1h",
    "15m": "4h",
    "30m": "4h",
    "1h": "4h",
    "2h": "1d",
    "4h": "1d",
    "6h": "1d",
    "12h": "1d",
    "1d": "1w",
}


def timeframe_seconds(timeframe: str) -> int:
    """Length of a timeframe such as "5m", "1h", "1d", "1w" in seconds; ValueError if unsupported."""
    match = _PATTERN.match(timeframe)
    if match is None:
        raise ValueError(f"unsupported timeframe {timeframe!r} (expected e.g. 5m, 1h, 4h, 1d, 1w)")
    return int(match["count"]) * _UNITS[match["unit"]]


def is_supported(timeframe: str) -> bool:
    return _PATTERN.match(timeframe) is not None


def higher_timeframe(timeframe: str) -> str | None:
    """The context timeframe for `timeframe`, or None when there is none."""
    return HIGHER_TIMEFRAMES.get(timeframe)


def bucket_start(epoch_seconds: int, period_seconds: int) -> int:
    """Open time (epoch seconds) of the candle of `period_seconds` containing `epoch_seconds`."""
    origin = _WEEK_ORIGIN_SECONDS if period_seconds % WEEK_SECONDS == 0 else 0
    return (epoch_seconds - origin) // period_seconds * period_seconds + origin


def to_epoch_seconds(moment: datetime) -> int:
    """Whole seconds since the epoch (floored); `moment` must be aware."""
    _require_aware(moment)
    return (moment - EPOCH) // timedelta(seconds=1)


def to_ms(moment: datetime) -> int:
    """Milliseconds since the epoch (floored), as exchanges and ccxt count time."""
    _require_aware(moment)
    return (moment - EPOCH) // timedelta(milliseconds=1)


def from_ms(milliseconds: int) -> datetime:
    return EPOCH + timedelta(milliseconds=milliseconds)


def from_seconds(seconds: int) -> datetime:
    return EPOCH + timedelta(seconds=seconds)


def _require_aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"datetime must be timezone-aware (UTC), got naive {moment!r}")
