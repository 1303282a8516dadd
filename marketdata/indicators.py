"""Technical indicators over candles (TA-Lib on float64 arrays) and a higher-timeframe resampler.

Pure functions: candles in, values out; no I/O. Results are `Decimal`, quantized so that the
snapshot's JSON is short and stable:

- price-like values (close, EMA, MACD, Bollinger, ATR) to 8 significant digits of the latest
  close (BTC at 8051 -> 0.0001, ADA at 0.0000529 BTC -> 0.000000000001), so one quantum is used
  for every price-like number of a market;
- RSI to 0.01; volume average to 8 significant digits of itself; the volume ratio to 0.0001;
- raw volumes are passed through exactly as recorded.

An indicator without enough history (TA-Lib's NaN) is `None`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np
import numpy.typing as npt
import talib

from marketdata.timeframes import bucket_start, from_seconds, timeframe_seconds, to_epoch_seconds
from marketdata.types import CandleData

INDICATOR_KEYS = (
    "ema20",
    "ema50",
    "rsi7",
    "rsi14",
    "macd",
    "macd_signal",
    "macd_hist",
    "bb_upper",
    "bb_middle",
    "bb_lower",
    "atr3",
    "atr14",
    "volume",
    "volume_avg20",
    "volume_ratio",
)
SERIES_KEYS = ("close", "ema20", "ema50", "rsi7", "rsi14", "macd", "volume")
SERIES_LENGTH = 10
SIGNIFICANT_DIGITS = 8
RSI_QUANTUM = Decimal("0.01")
RATIO_QUANTUM = Decimal("0.0001")

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class IndicatorSet:
    """Latest value of each indicator and its recent series (oldest first)."""

    latest: dict[str, Decimal | None]
    series: dict[str, list[Decimal | None]]

    def as_json(self) -> dict[str, dict[str, str | None] | dict[str, list[str | None]]]:
        """Numbers as plain decimal strings (no exponent), None as null."""
        return {
            "indicators": {key: decimal_text(value) for key, value in self.latest.items()},
            "series": {key: [decimal_text(v) for v in values] for key, values in self.series.items()},
        }


def decimal_text(value: Decimal | None) -> str | None:
    """A Decimal as plain text: no exponent, no negative zero."""
    if value is None:
        return None
    if value == 0:
        value = abs(value)
    return format(value, "f")


def significant_quantum(reference: Decimal, digits: int = SIGNIFICANT_DIGITS) -> Decimal:
    """The quantum that keeps `digits` significant digits of `reference` (1E-8 for zero)."""
    if reference == 0 or not reference.is_finite():
        return Decimal("1E-8")
    return Decimal(1).scaleb(reference.copy_abs().adjusted() - digits + 1)


def compute_indicators(candles: Sequence[CandleData], *, series_length: int = SERIES_LENGTH) -> IndicatorSet:
    """EMA 20/50, RSI 7/14, MACD(12,26,9), Bollinger(20,2), ATR 3/14 and volume over `candles`."""
    if not candles:
        return IndicatorSet(latest=dict.fromkeys(INDICATOR_KEYS), series={key: [] for key in SERIES_KEYS})
    close = _array(c.close for c in candles)
    high = _array(c.high for c in candles)
    low = _array(c.low for c in candles)
    volume = _array(c.volume for c in candles)

    price_q = significant_quantum(candles[-1].close)
    macd, macd_signal, macd_hist = talib.MACD(close, fastperiod=12, slowperiod=26, signalperiod=9)
    bb_upper, bb_middle, bb_lower = talib.BBANDS(
        close, timeperiod=20, nbdevup=2.0, nbdevdn=2.0, matype=talib.MA_Type.SMA
    )
    volume_avg = talib.SMA(volume, timeperiod=20)
    with np.errstate(divide="ignore", invalid="ignore"):
        # A zero average (a flat, gap-filled stretch) has no meaningful ratio: NaN -> None.
        volume_ratio = np.where(volume_avg > 0, volume / volume_avg, np.nan)
    volume_q = significant_quantum(_to_decimal_or_zero(volume_avg[-1]))

    price_arrays: dict[str, FloatArray] = {
        "ema20": talib.EMA(close, timeperiod=20),
        "ema50": talib.EMA(close, timeperiod=50),
        "macd": macd,
        "macd_signal": macd_signal,
        "macd_hist": macd_hist,
        "bb_upper": bb_upper,
        "bb_middle": bb_middle,
        "bb_lower": bb_lower,
        "atr3": talib.ATR(high, low, close, timeperiod=3),
        "atr14": talib.ATR(high, low, close, timeperiod=14),
    }
    arrays: dict[str, tuple[FloatArray, Decimal]] = {key: (arr, price_q) for key, arr in price_arrays.items()}
    arrays["rsi7"] = (talib.RSI(close, timeperiod=7), RSI_QUANTUM)
    arrays["rsi14"] = (talib.RSI(close, timeperiod=14), RSI_QUANTUM)
    arrays["volume_avg20"] = (volume_avg, volume_q)
    arrays["volume_ratio"] = (volume_ratio, RATIO_QUANTUM)

    latest: dict[str, Decimal | None] = {}
    for key in INDICATOR_KEYS:
        if key == "volume":
            latest[key] = candles[-1].volume
        else:
            array, quantum = arrays[key]
            latest[key] = _quantize(array[-1], quantum)

    recent = candles[-series_length:]
    series: dict[str, list[Decimal | None]] = {}
    for key in SERIES_KEYS:
        if key == "close":
            series[key] = [c.close for c in recent]
        elif key == "volume":
            series[key] = [c.volume for c in recent]
        else:
            array, quantum = arrays[key]
            series[key] = [_quantize(v, quantum) for v in array[-len(recent) :]]
    return IndicatorSet(latest=latest, series=series)


def resample(candles: Sequence[CandleData], *, source: str, target: str) -> list[CandleData]:
    """Aggregate candles of timeframe `source` into complete candles of timeframe `target`.

    Open is the bucket's first open, high the max, low the min, close the last close and volume
    the sum. Buckets align like the exchange's own (epoch multiples; weeks from Monday). Only
    complete buckets are returned: the first one when it starts with the bucket, the last one
    when its period has ended with the last source candle, so the context never shows a
    half-formed candle. A gap inside a bucket (exchange downtime) does not drop it.
    """
    source_seconds = timeframe_seconds(source)
    target_seconds = timeframe_seconds(target)
    if target_seconds <= source_seconds or target_seconds % source_seconds:
        raise ValueError(f"cannot resample {source} into {target}: it must be a larger multiple")
    buckets: dict[int, list[CandleData]] = {}
    for candle in candles:
        buckets.setdefault(bucket_start(to_epoch_seconds(candle.open_time), target_seconds), []).append(candle)
    if not buckets:
        return []
    first_start = min(buckets)
    last_open = to_epoch_seconds(candles[-1].open_time)
    result: list[CandleData] = []
    for start, members in sorted(buckets.items()):
        if start == first_start and to_epoch_seconds(members[0].open_time) != start:
            continue  # started mid-bucket: its open, high and low are unknown
        if start + target_seconds > last_open + source_seconds:
            continue  # still forming
        result.append(
            CandleData(
                # The bucket's own open time, even when its first source candle is missing.
                open_time=from_seconds(start),
                open=members[0].open,
                high=max(c.high for c in members),
                low=min(c.low for c in members),
                close=members[-1].close,
                volume=sum((c.volume for c in members), Decimal(0)),
            )
        )
    return result


def _array(values: Iterable[Decimal]) -> FloatArray:
    return np.array([float(v) for v in values], dtype=np.float64)


def _to_decimal_or_zero(value: float) -> Decimal:
    return Decimal(value) if math.isfinite(value) else Decimal(0)


def _quantize(value: float, quantum: Decimal) -> Decimal | None:
    if not math.isfinite(value):
        return None
    # Decimal(float) is the float's exact value, so the rounding is the same on every machine.
    return Decimal(value).quantize(quantum, rounding=ROUND_HALF_EVEN)
