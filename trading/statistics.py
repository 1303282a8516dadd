"""Performance statistics on market time (pure: numpy and plain values in, plain values out).

Used by the leaderboard, a bot's performance, the prompt's "Sharpe so far" and the benchmark; the
README ("How the numbers are computed") explains the same method to users.

1. **Market clock.** Every equity mark has the market time it was marked at (the open time of the
   last closed candle the cycle saw). `advance_clock` turns those into a clock that never runs
   backwards: on the replay feed the recording loops, and the mark after the wrap continues one
   timeframe after the one before it instead of jumping back years.
2. **Grid.** The marks are resampled onto a fixed grid of market time with period `P`, one of
   `GRID_PERIODS` (1m … 1w, each dividing the next, so a coarser grid is a subset of a finer one).
   The value of grid point k is the first mark at or after the grid time k·P (its bucket's open).
   `P` is the smallest grid period at least as long as the bot's timeframe and the market time
   between two of its marks (a bot that marks every 12 candles gets a 12-candle grid, not 11 zero
   returns out of 12), coarsened until the window has at most `MAX_PERIODS` periods.
3. **Returns.** `r_k = V_k / V_(k-1) - 1`, from the value at the start of the window through each
   grid point to the latest mark (the last period may be partial). Compounded they give exactly
   the window's return.
4. **Ratios.** Sharpe = mean(r) / std(r, ddof=1) · √N and Sortino = mean(r) / √mean(min(r, 0)²) · √N,
   risk-free rate 0, with N = 365 days / P periods per year (crypto trades every day). Both are
   None below `MIN_PERIODS` periods (an estimate from fewer is noise), or when undefined.
5. **Max drawdown**: the largest fall from a running peak of the grid values, start included.
6. **Intervals**: 95 % percentile intervals from Politis & Romano's stationary bootstrap of the
   period returns (blocks of random, geometrically distributed length, so the autocorrelation of
   returns survives the resampling): `arch.bootstrap.StationaryBootstrap`'s draws with a fixed
   seed. The expected block length is Politis & White's automatic choice
   (`arch.bootstrap.optimal_block_length`), rounded to `BLOCK_LENGTHS`. The excess return over
   buy-and-hold resamples the same periods of both series (a paired bootstrap).

Cost: every statistic here is a function of four sums over the periods (of log(1+r), r, r² and
log(1+r_bh)), so a replicate is a row of resampling counts W (how often each period was drawn)
and all replicates of all bots with the same period count and block length are one matrix product
W · X. That is what lets the leaderboard of 1,000 bots bootstrap in a fraction of a second
(bench/leaderboard.py).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from marketdata.timeframes import bucket_start

FloatArray = npt.NDArray[np.float64]

# Grid periods, finest first; each divides the next (weeks start on Monday, a day boundary), so a
# mark that opens a bucket of one period opens one of every finer period too.
GRID_PERIODS: tuple[int, ...] = (60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400, 604800)
MIN_PERIODS = 30
MAX_PERIODS = 500
YEAR_SECONDS = 365 * 86400
CONFIDENCE = 0.95
BOOTSTRAP_REPS = 1000
BOOTSTRAP_SEED = 20250917
# Expected block lengths the automatic choice is rounded to (log-spaced): bots with the same
# period count and block length share one set of resamples.
BLOCK_LENGTHS: tuple[float, ...] = (1, 1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128)


# --- Market clock and grid -------------------------------------------------------------------


def advance_clock(
    *,
    latest_clock: int | None,
    anchor: tuple[int, int] | None,
    market_seconds: int | None,
    wall_seconds: int,
    step_seconds: int,
) -> int:
    """The market clock (epoch seconds, never decreasing) of a bot's new equity mark.

    `latest_clock` is the clock of the bot's latest mark; `anchor` is (clock, market seconds) of
    its latest mark that had a market time. A mark without a market time (a stop's close-out) is
    at the latest clock; a market time earlier than the anchor's (the replay looping, or a feed
    answering with an older candle) continues one `step_seconds` (the timeframe) after it.
    """
    if market_seconds is None:
        return latest_clock if latest_clock is not None else wall_seconds
    if anchor is None:
        clock = market_seconds
    else:
        anchor_clock, anchor_market = anchor
        delta = market_seconds - anchor_market
        clock = anchor_clock + (delta if delta >= 0 else step_seconds)
    return clock if latest_clock is None else max(clock, latest_clock)


def grid_bucket(clock: int, period: int) -> int:
    """Index of the grid bucket of `period` seconds that holds `clock` (weeks open on Monday)."""
    return bucket_start(clock, period) // period


def grid_level(*, previous_clock: int | None, clock: int) -> int:
    """How many of `GRID_PERIODS` (finest first) a mark at `clock` opens a new bucket of.

    The bot's first mark opens every one. A mark with level ≥ i+1 is the first of its bucket on
    the grid of `GRID_PERIODS[i]`: the leaderboard reads only those (an index serves it).
    """
    if previous_clock is None:
        return len(GRID_PERIODS)
    level = 0
    for period in GRID_PERIODS:
        if grid_bucket(previous_clock, period) == grid_bucket(clock, period):
            break
        level += 1
    return level


def level_of(period: int) -> int:
    """The grid level whose marks open the buckets of `period` (one of GRID_PERIODS)."""
    return GRID_PERIODS.index(period) + 1


def finest_period(*, timeframe_seconds: int, span_seconds: int) -> int:
    """The finest grid period allowed: at least the timeframe, at most MAX_PERIODS in the span."""
    for period in GRID_PERIODS:
        if period >= timeframe_seconds and span_seconds / period <= MAX_PERIODS:
            return period
    return GRID_PERIODS[-1]


def grid_period(*, timeframe_seconds: int, span_seconds: int, step_seconds: float) -> int:
    """The grid period of a window: at least the timeframe and the typical market time between
    two marks (`step_seconds`), and no more than MAX_PERIODS periods in `span_seconds`."""
    floor = max(timeframe_seconds, step_seconds)
    for period in GRID_PERIODS:
        if period >= floor and span_seconds / period <= MAX_PERIODS:
            return period
    return GRID_PERIODS[-1]


def typical_step(clocks: Sequence[int] | npt.NDArray[np.int64]) -> float:
    """The median market time between consecutive marks that moved the clock (0 for none)."""
    steps = np.diff(np.asarray(clocks, dtype=np.int64))
    steps = steps[steps > 0]
    return float(np.median(steps)) if steps.size else 0.0


def grid_positions(clocks: Sequence[int] | npt.NDArray[np.int64], *, period: int) -> npt.NDArray[np.int64]:
    """For marks that open buckets (ascending clocks), the grid index of each, from 0."""
    origin = bucket_start(0, period)  # weeks open on Monday, not on the epoch's Thursday
    buckets = (np.asarray(clocks, dtype=np.int64) - origin) // period
    return buckets - buckets[0] if buckets.size else buckets


def on_grid(values: Sequence[float] | FloatArray, positions: npt.NDArray[np.int64]) -> FloatArray:
    """Values placed on consecutive grid points, a missing point carrying the value before it."""
    array = np.asarray(values, dtype=np.float64)
    if not array.size:
        return array
    size = int(positions[-1]) + 1
    if size == array.size:
        return array
    # Forward fill: each grid point takes the last value at or before it.
    owner = np.searchsorted(positions, np.arange(size), side="right") - 1
    return array[owner]


def periods_per_year(period_seconds: int) -> float:
    return YEAR_SECONDS / period_seconds


def buy_and_hold_index(
    *, symbols: Sequence[str], prices: dict[str, Any], first_prices: dict[str, Any]
) -> Decimal | None:
    """Equal-weight buy-and-hold of `symbols` bought at `first_prices`, marked at `prices`:
    the mean of price / first price (1 at the start); None without every price."""
    if not symbols:
        return None
    try:
        ratios = [Decimal(str(prices[s])) / Decimal(str(first_prices[s])) for s in symbols]
    except (KeyError, ArithmeticError, ValueError):
        return None
    if any(not r.is_finite() or r <= 0 for r in ratios):
        return None
    return (sum(ratios, Decimal(0)) / len(ratios)).quantize(Decimal("1e-12"))


# --- Statistics of one series ----------------------------------------------------------------


def period_returns(values: FloatArray) -> FloatArray:
    """Simple returns between consecutive values (all values must be positive)."""
    return values[1:] / values[:-1] - 1.0


def sharpe_ratio(returns: FloatArray, *, periods_per_year: float) -> float | None:
    """Annualised Sharpe ratio (risk-free 0); None below MIN_PERIODS or without variation."""
    if returns.size < MIN_PERIODS:
        return None
    std = float(np.std(returns, ddof=1))
    if not std > 1e-15:
        return None
    return float(np.mean(returns)) / std * math.sqrt(periods_per_year)


def sortino_ratio(returns: FloatArray, *, periods_per_year: float) -> float | None:
    """Annualised Sortino ratio (target 0); None below MIN_PERIODS or without a losing period."""
    if returns.size < MIN_PERIODS:
        return None
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
    if not downside > 1e-15:
        return None
    return float(np.mean(returns)) / downside * math.sqrt(periods_per_year)


def max_drawdown(values: FloatArray) -> float:
    """Largest fall from a running peak, as a fraction of the peak (0 for none)."""
    if not values.size:
        return 0.0
    peaks = np.maximum.accumulate(values)
    with np.errstate(divide="ignore", invalid="ignore"):
        falls = np.where(peaks > 0, 1.0 - values / peaks, 0.0)
    return float(max(falls.max(), 0.0))


def block_length(returns: FloatArray) -> float:
    """Politis & White's expected block length for the stationary bootstrap, rounded to
    BLOCK_LENGTHS (1, the i.i.d. bootstrap, for a series without variation)."""
    return float(block_lengths(returns[np.newaxis, :])[0])


def block_lengths(returns: FloatArray) -> FloatArray:
    """`block_length` of each row of a (series × periods) matrix at once."""
    estimates = optimal_block_lengths(returns)
    logs = np.log(np.asarray(BLOCK_LENGTHS))
    with np.errstate(divide="ignore", invalid="ignore"):
        nearest = np.argmin(np.abs(logs[np.newaxis, :] - np.log(np.maximum(estimates, 1.0))[:, np.newaxis]), axis=1)
    rounded = np.asarray(BLOCK_LENGTHS)[nearest]
    return np.where(np.isfinite(estimates) & (estimates > 1), rounded, 1.0)


def optimal_block_lengths(x: FloatArray) -> FloatArray:
    """`arch.bootstrap.optimal_block_length(x)["stationary"]` for each row of a (series × periods)
    matrix: Politis & White (2004) with the correction of Patton, Politis & White (2009), arch's
    arithmetic step by step, vectorised over the series (arch loops over them in Python, which
    is most of a large leaderboard's time). The tests check it against arch."""
    count, nobs = x.shape
    if nobs < 3:
        return np.ones(count)
    eps = x - x.mean(axis=1, keepdims=True)
    b_max = math.ceil(min(3 * math.sqrt(nobs), nobs / 3))
    kn = max(5, int(np.log10(nobs)))
    m_max = math.ceil(math.sqrt(nobs)) + kn
    cv = 2 * math.sqrt(math.log10(nobs) / nobs)
    acv = np.zeros((count, m_max + 1))
    abs_acorr = np.zeros((count, m_max + 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(min(m_max + 1, nobs - 1)):
            v1 = np.einsum("ij,ij->i", eps[:, i + 1 :], eps[:, i + 1 :])
            v2 = np.einsum("ij,ij->i", eps[:, : nobs - i - 1], eps[:, : nobs - i - 1])
            cross = np.einsum("ij,ij->i", eps[:, i:], eps[:, : nobs - i])
            acv[:, i] = cross / nobs
            abs_acorr[:, i] = np.abs(cross) / np.sqrt(v1 * v2)
    # m: twice the first lag after which kn autocorrelations in a row are insignificant.
    inside = np.concatenate([np.zeros((count, 1)), np.cumsum(abs_acorr < cv, axis=1)], axis=1)
    lags = np.arange(kn, m_max + 1)
    quiet = (inside[:, lags] - inside[:, lags - kn]) == kn
    found = quiet.any(axis=1)
    opt_m = lags[np.argmax(quiet, axis=1)] - kn
    m = np.minimum(np.where(found, 2 * np.maximum(opt_m, 1), m_max), m_max)
    k = np.arange(1, m_max + 1)
    ratio = k[np.newaxis, :] / m[:, np.newaxis]
    lam = np.where(ratio <= 0.5, 1.0, 2 * (1 - ratio))
    lam[k[np.newaxis, :] > m[:, np.newaxis]] = 0.0
    g = np.sum(2 * lam * k * acv[:, 1:], axis=1)
    lr_acv = acv[:, 0] + np.sum(2 * lam * acv[:, 1:], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        b_sb = ((2 * g**2) / (2 * lr_acv**2)) ** (1 / 3) * nobs ** (1 / 3)
    return np.where(lr_acv > 0, np.minimum(b_sb, b_max), 1.0)


def bootstrap_weights(
    *, periods: int, block: float, reps: int = BOOTSTRAP_REPS, seed: int = BOOTSTRAP_SEED
) -> FloatArray:
    """How often each period is drawn in each replicate (reps × periods): arch's stationary
    bootstrap with expected block length `block` and this seed, the same draws as
    `StationaryBootstrap(block, data, seed=seed)` resamples `data` with."""
    from arch.bootstrap import StationaryBootstrap

    # arch takes any positive expected block length (it draws with probability 1/block).
    sampler = StationaryBootstrap(cast(int, block), np.empty(periods), seed=seed)
    indices = np.vstack([sampler.update_indices() for _ in range(reps)])
    flat = (np.arange(reps)[:, None] * periods + indices).ravel()
    return np.bincount(flat, minlength=reps * periods).reshape(reps, periods).astype(np.float64)


def percentile_interval(replicates: FloatArray, *, confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """The percentile interval of bootstrap replicates (non-finite replicates dropped), as
    arch's `conf_int(method="percentile")` computes it."""
    finite = replicates[np.isfinite(replicates)]
    if finite.size < 0.9 * replicates.size or not finite.size:
        return None
    alpha = (1.0 - confidence) / 2
    low, high = np.percentile(finite, [100 * alpha, 100 * (1 - alpha)])
    return float(low), float(high)


# --- Summaries -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Series:
    """One bot's window on its grid: the value at the start, then at each grid point (and the
    latest mark). `benchmark` is buy-and-hold of the same symbols at the same points (None when
    its prices are unknown)."""

    values: FloatArray
    period_seconds: int
    benchmark: FloatArray | None = None


@dataclass(slots=True)
class Replicates:
    """A bot's bootstrap replicates, kept to aggregate bots (per model) replicate by replicate."""

    net_return: FloatArray
    sharpe: FloatArray | None
    excess_return: FloatArray | None


@dataclass(slots=True)
class Summary:
    """Statistics of one window. Returns and drawdown are fractions (0.05 = 5 %)."""

    periods: int
    period_seconds: int
    net_return: float | None
    net_return_ci: tuple[float, float] | None = None
    sharpe: float | None = None
    sharpe_ci: tuple[float, float] | None = None
    sortino: float | None = None
    max_drawdown: float | None = None
    benchmark_return: float | None = None
    excess_return: float | None = None
    excess_return_ci: tuple[float, float] | None = None
    block_length: float | None = None
    replicates: Replicates | None = None

    @property
    def beats_benchmark(self) -> bool | None:
        """True/False when the excess-return interval lies above/below 0; None when it holds 0
        (not distinguishable from buy-and-hold) or is unknown."""
        if self.excess_return_ci is None:
            return None
        low, high = self.excess_return_ci
        if low > 0:
            return True
        if high < 0:
            return False
        return None


def summarise(series: Sequence[Series], *, reps: int = BOOTSTRAP_REPS, seed: int = BOOTSTRAP_SEED) -> list[Summary]:
    """Statistics and bootstrap intervals of many series at once (see the module docstring):
    series with the same number of periods are described as one matrix, and those that also
    share a block length are bootstrapped with one matrix product."""
    summaries: list[Summary] = []
    by_length: dict[int, list[int]] = defaultdict(list)
    for index, one in enumerate(series):
        summary, complete = _describe_alone(one)
        summaries.append(summary)
        if complete:
            by_length[summary.periods].append(index)
    for periods, members in by_length.items():
        _describe_together(periods, members, series, summaries, reps=reps, seed=seed)
    return summaries


def _benchmark_of(one: Series) -> FloatArray | None:
    bench = one.benchmark
    if bench is None or bench.size != one.values.size or not np.all(np.isfinite(bench)) or not np.all(bench > 0):
        return None
    return bench


def _describe_alone(one: Series) -> tuple[Summary, bool]:
    """What one series needs no company for; True when the rest is computed together."""
    values = one.values
    periods = max(values.size - 1, 0)
    summary = Summary(periods=periods, period_seconds=one.period_seconds, net_return=None)
    if values.size == 1 and values[0] > 0:
        summary.net_return, summary.max_drawdown = 0.0, 0.0  # no mark in the window: nothing moved
        return summary, False
    if values.size < 2 or not values[0] > 0:
        return summary, False
    summary.net_return = float(values[-1] / values[0] - 1.0)
    summary.max_drawdown = max_drawdown(values)
    bench = _benchmark_of(one)
    if bench is not None:
        summary.benchmark_return = float(bench[-1] / bench[0] - 1.0)
        summary.excess_return = summary.net_return - summary.benchmark_return
    # An account wiped out has no returns past that point: no ratio, no interval.
    return summary, bool(np.all(values > 0))


def _describe_together(
    periods: int, members: list[int], series: Sequence[Series], summaries: list[Summary], *, reps: int, seed: int
) -> None:
    values = np.vstack([series[i].values for i in members])
    returns = values[:, 1:] / values[:, :-1] - 1.0
    per_year = np.array([periods_per_year(series[i].period_seconds) for i in members])
    sharpe, sortino = _ratios(returns, per_year)
    for row, index in enumerate(members):
        summaries[index].sharpe = sharpe[row]
        summaries[index].sortino = sortino[row]
    if periods < MIN_PERIODS:
        return
    blocks = block_lengths(returns)
    benches = [_benchmark_of(series[i]) for i in members]
    bench_returns = np.vstack([np.zeros(periods) if b is None else b[1:] / b[:-1] - 1.0 for b in benches])
    groups: dict[float, list[int]] = defaultdict(list)
    for row, block in enumerate(blocks):
        groups[float(block)].append(row)
    for block, rows in groups.items():
        weights = bootstrap_weights(periods=periods, block=block, reps=reps, seed=seed)
        picked = np.asarray(rows)
        # Four sums per series and replicate, one product for the group.
        log_r, r = np.log1p(returns[picked]), returns[picked]
        sums = weights @ np.hstack([log_r.T, r.T, (r**2).T, np.log1p(bench_returns[picked]).T])
        k = len(rows)
        net = np.expm1(sums[:, :k])
        mean = sums[:, k : 2 * k] / periods
        variance = np.maximum(sums[:, 2 * k : 3 * k] - periods * mean**2, 0.0) / (periods - 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = mean / np.sqrt(variance) * np.sqrt(per_year[picked])[np.newaxis, :]
        # A resample of only flat periods (a bot idle most of the window) earned nothing at no
        # risk: its Sharpe is taken as 0 rather than undefined, so such a bot keeps an interval.
        ratio = np.where((variance == 0) & (mean == 0), 0.0, ratio)
        excess = net - np.expm1(sums[:, 3 * k :])
        net_ci, sharpe_ci, excess_ci = (percentile_intervals(m) for m in (net, ratio, excess))
        for column, row in enumerate(rows):
            summary = summaries[members[row]]
            summary.block_length = block
            summary.net_return_ci = net_ci[column]
            has_sharpe = summary.sharpe is not None
            has_excess = benches[row] is not None
            summary.sharpe_ci = sharpe_ci[column] if has_sharpe else None
            summary.excess_return_ci = excess_ci[column] if has_excess else None
            summary.replicates = Replicates(
                net_return=net[:, column],
                sharpe=ratio[:, column] if has_sharpe else None,
                excess_return=excess[:, column] if has_excess else None,
            )


def _ratios(returns: FloatArray, per_year: FloatArray) -> tuple[list[float | None], list[float | None]]:
    """Sharpe and Sortino of each row (as sharpe_ratio and sortino_ratio compute them)."""
    count, periods = returns.shape
    if periods < MIN_PERIODS:
        return [None] * count, [None] * count
    mean = returns.mean(axis=1)
    std = returns.std(axis=1, ddof=1)
    downside = np.sqrt(np.mean(np.minimum(returns, 0.0) ** 2, axis=1))
    root = np.sqrt(per_year)
    sharpe = [float(m / s * q) if s > 1e-15 else None for m, s, q in zip(mean, std, root, strict=True)]
    sortino = [float(m / d * q) if d > 1e-15 else None for m, d, q in zip(mean, downside, root, strict=True)]
    return sharpe, sortino


def percentile_intervals(replicates: FloatArray) -> list[tuple[float, float] | None]:
    """`percentile_interval` of each column of a (replicates × series) matrix."""
    alpha = (1.0 - CONFIDENCE) / 2
    finite: npt.NDArray[np.bool_] = np.asarray(np.isfinite(replicates).all(axis=0))
    bounds = np.percentile(np.where(np.isfinite(replicates), replicates, 0.0), [100 * alpha, 100 * (1 - alpha)], axis=0)
    return [
        (float(bounds[0, j]), float(bounds[1, j])) if finite[j] else percentile_interval(replicates[:, j])
        for j in range(replicates.shape[1])
    ]


def aggregate(summaries: Sequence[Summary]) -> Summary | None:
    """Equal-weight average of several bots' statistics (a model's bots), with intervals from the
    replicate-by-replicate averages of their bootstraps. None without any bot to average."""
    measured = [s for s in summaries if s.net_return is not None]
    if not measured:
        return None

    def mean(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return float(np.mean(known)) if len(known) == len(values) and known else None

    def mean_ci(pick: Any) -> tuple[float, float] | None:
        arrays: list[FloatArray] = []
        for s in measured:
            array = pick(s.replicates) if s.replicates is not None else None
            if array is None:
                return None
            arrays.append(array)
        return percentile_interval(np.mean(np.vstack(arrays), axis=0))

    return Summary(
        periods=min(s.periods for s in measured),
        period_seconds=max(s.period_seconds for s in measured),
        net_return=mean([s.net_return for s in measured]),
        net_return_ci=mean_ci(lambda r: r.net_return),
        sharpe=mean([s.sharpe for s in measured]),
        sharpe_ci=mean_ci(lambda r: r.sharpe),
        sortino=mean([s.sortino for s in measured]),
        max_drawdown=mean([s.max_drawdown for s in measured]),
        benchmark_return=mean([s.benchmark_return for s in measured]),
        excess_return=mean([s.excess_return for s in measured]),
        excess_return_ci=mean_ci(lambda r: r.excess_return),
    )


# --- Small helpers over plain values ---------------------------------------------------------


def to_decimal(value: float | None, places: int = 4) -> Decimal | None:
    """A float statistic as a Decimal rounded to `places` (None stays None, non-finite → None)."""
    if value is None or not math.isfinite(value):
        return None
    return Decimal(repr(value)).quantize(Decimal(1).scaleb(-places))


def pct(value: float | None) -> Decimal | None:
    """A fraction as a percentage with 4 decimals (0.0123 → 1.2300)."""
    return None if value is None else to_decimal(value * 100, 4)


def pct_interval(interval: tuple[float, float] | None) -> list[Decimal | None] | None:
    return None if interval is None else [pct(interval[0]), pct(interval[1])]


def win_rate(pnls: Sequence[Decimal]) -> Decimal | None:
    """Share of closed trades with a positive net PnL, in percent; None without trades."""
    if not pnls:
        return None
    wins = sum(1 for p in pnls if p > 0)
    return (Decimal(wins) / Decimal(len(pnls)) * 100).quantize(Decimal("0.01"))
