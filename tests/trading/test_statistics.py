"""trading.statistics against reference libraries on the same series, and a hand-worked example.

References: empyrical-reloaded for Sharpe, Sortino and max drawdown; arch for the block length,
the stationary bootstrap's draws and its percentile intervals (same seed, same replicates).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import empyrical
import numpy as np
import pytest
from arch.bootstrap import StationaryBootstrap, optimal_block_length

from trading import statistics as st

HOUR = 3600
PER_YEAR_HOURLY = 365 * 24


def series_of(returns: np.ndarray, start: float = 10_000.0) -> np.ndarray:
    return start * np.concatenate([[1.0], np.cumprod(1 + returns)])


def autocorrelated_returns(n: int, seed: int) -> np.ndarray:
    """AR(1) returns (phi 0.4) with a drift: the kind of series a block bootstrap is for."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0005, 0.01, n)
    out = np.empty(n)
    out[0] = noise[0]
    for i in range(1, n):
        out[i] = 0.4 * out[i - 1] + noise[i]
    return out


# --- A hand-worked example -------------------------------------------------------------------


def test_hand_worked_example():
    # 40 hourly periods: +2 %, -1 %, +2 %, -1 % ...
    returns = np.tile([0.02, -0.01], 20)
    values = series_of(returns, 100.0)
    [summary] = st.summarise([st.Series(values=values, period_seconds=HOUR)])

    assert summary.periods == 40
    assert summary.net_return == pytest.approx((1.02 * 0.99) ** 20 - 1, rel=1e-12)
    # Mean 0.005; deviations ±0.015, so std (ddof 1) = 0.015·√(40/39).
    assert summary.sharpe == pytest.approx(0.005 / (0.015 * math.sqrt(40 / 39)) * math.sqrt(8760), rel=1e-12)
    # Downside deviation √(20·0.01²/40) = √0.00005.
    assert summary.sortino == pytest.approx(0.005 / math.sqrt(0.00005) * math.sqrt(8760), rel=1e-12)
    # Every -1 % follows a new peak: the worst fall is exactly 1 %.
    assert summary.max_drawdown == pytest.approx(0.01, rel=1e-12)
    assert summary.net_return_ci is not None and summary.net_return_ci[0] <= summary.net_return_ci[1]


def test_too_few_periods_give_no_ratio_and_no_interval():
    values = series_of(np.tile([0.02, -0.01], 14))  # 28 periods
    [summary] = st.summarise([st.Series(values=values, period_seconds=HOUR)])

    assert summary.periods == 28
    assert summary.sharpe is None and summary.sortino is None
    assert summary.net_return_ci is None and summary.sharpe_ci is None
    assert summary.net_return == pytest.approx(values[-1] / values[0] - 1)


def test_flat_equity_has_no_sharpe():
    [summary] = st.summarise([st.Series(values=np.full(50, 10_000.0), period_seconds=HOUR)])
    assert summary.net_return == 0 and summary.sharpe is None and summary.max_drawdown == 0
    assert summary.net_return_ci == (0.0, 0.0)


# --- Against empyrical-reloaded --------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_ratios_and_drawdown_match_empyrical(seed):
    returns = autocorrelated_returns(300, seed)
    values = series_of(returns)
    for period in (300, HOUR, 86400):
        per_year = st.periods_per_year(period)
        [summary] = st.summarise([st.Series(values=values, period_seconds=period)], reps=50)
        assert summary.sharpe == pytest.approx(empyrical.sharpe_ratio(returns, annualization=per_year), rel=1e-9)
        assert summary.sortino == pytest.approx(empyrical.sortino_ratio(returns, annualization=per_year), rel=1e-9)
    # empyrical reports the drawdown as a negative fraction.
    assert summary.max_drawdown == pytest.approx(-empyrical.max_drawdown(returns), rel=1e-9)
    assert summary.net_return == pytest.approx(empyrical.cum_returns_final(returns), rel=1e-9)


def test_drawdown_from_the_starting_value_counts():
    values = np.array([100.0, 90.0, 95.0])
    assert st.max_drawdown(values) == pytest.approx(0.1)
    assert st.max_drawdown(values) == pytest.approx(-empyrical.max_drawdown(st.period_returns(values)))


# --- Against arch ----------------------------------------------------------------------------


def test_block_lengths_of_many_series_are_archs():
    matrix = np.vstack([autocorrelated_returns(240, seed) for seed in range(12)] + [np.tile([0.01, -0.01], 120)])
    expected = optimal_block_length(matrix.T)["stationary"].to_numpy()
    assert st.optimal_block_lengths(matrix) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("seed", [4, 5, 6, 7])
def test_block_length_is_archs_rounded(seed):
    returns = autocorrelated_returns(200 + 50 * seed, seed)
    estimate = float(optimal_block_length(returns)["stationary"].iloc[0])
    rounded = st.block_length(returns)
    assert rounded in st.BLOCK_LENGTHS and abs(math.log(rounded / max(estimate, 1))) <= math.log(1.5) / 2 + 1e-9


@pytest.mark.parametrize(("periods", "block"), [(40, 1.0), (120, 3.0), (333, 8.0)])
def test_resamples_are_archs_draws(periods, block):
    weights = st.bootstrap_weights(periods=periods, block=block, reps=200, seed=99)
    bootstrap = StationaryBootstrap(block, np.arange(periods), seed=99)
    for row in weights:
        indices = bootstrap.update_indices()  # what arch resamples the next replicate with
        assert np.array_equal(row, np.bincount(indices, minlength=periods))


def _arch_interval(block: float, *data: np.ndarray, func) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    bootstrap = StationaryBootstrap(block, *data, seed=st.BOOTSTRAP_SEED)
    low, high = bootstrap.conf_int(func, reps=st.BOOTSTRAP_REPS, method="percentile")
    return float(low[0]), float(high[0])


@pytest.mark.parametrize("seed", [8, 9])
def test_intervals_are_archs_on_the_same_seed(seed):
    returns = autocorrelated_returns(250, seed)
    market = autocorrelated_returns(250, seed + 100)
    series = st.Series(values=series_of(returns), period_seconds=HOUR, benchmark=series_of(market, 50.0))
    [summary] = st.summarise([series])
    block = summary.block_length
    assert block == st.block_length(returns)

    def net(r):  # type: ignore[no-untyped-def]
        return np.expm1(np.log1p(r).sum())

    def sharpe(r):  # type: ignore[no-untyped-def]
        return r.mean() / r.std(ddof=1) * math.sqrt(PER_YEAR_HOURLY)

    def excess(r, m):  # type: ignore[no-untyped-def]
        return np.expm1(np.log1p(r).sum()) - np.expm1(np.log1p(m).sum())

    assert summary.net_return_ci == pytest.approx(_arch_interval(block, returns, func=net), rel=1e-9)
    assert summary.sharpe_ci == pytest.approx(_arch_interval(block, returns, func=sharpe), rel=1e-9)
    assert summary.excess_return_ci == pytest.approx(_arch_interval(block, returns, market, func=excess), rel=1e-9)
    assert summary.excess_return == pytest.approx(net(returns) - net(market))


def test_bots_bootstrapped_together_get_their_own_intervals():
    a = st.Series(values=series_of(autocorrelated_returns(100, 1)), period_seconds=HOUR)
    b = st.Series(values=series_of(autocorrelated_returns(100, 2)), period_seconds=HOUR)
    together = st.summarise([a, b])
    alone = [st.summarise([a])[0], st.summarise([b])[0]]
    assert [s.net_return_ci for s in together] == [s.net_return_ci for s in alone]
    assert together[0].net_return_ci != together[1].net_return_ci


def test_an_interval_holding_zero_is_not_distinguishable():
    returns = autocorrelated_returns(200, 3)
    same = st.Series(values=series_of(returns), period_seconds=HOUR, benchmark=series_of(returns))
    better = st.Series(values=series_of(returns + 0.01), period_seconds=HOUR, benchmark=series_of(returns))
    [s_same, s_better] = st.summarise([same, better])
    assert s_same.excess_return == pytest.approx(0) and s_same.beats_benchmark is None
    assert s_better.excess_return_ci is not None and s_better.excess_return_ci[0] > 0
    assert s_better.beats_benchmark is True


def test_model_aggregate_averages_bots_and_their_replicates():
    summaries = st.summarise(
        [st.Series(values=series_of(autocorrelated_returns(80, s)), period_seconds=HOUR) for s in (1, 2)]
    )
    model = st.aggregate(summaries)
    assert model is not None
    assert model.net_return == pytest.approx((summaries[0].net_return + summaries[1].net_return) / 2)
    assert model.sharpe == pytest.approx((summaries[0].sharpe + summaries[1].sharpe) / 2)
    replicates = (summaries[0].replicates.net_return + summaries[1].replicates.net_return) / 2
    assert model.net_return_ci == st.percentile_interval(replicates)


def test_a_mostly_idle_bot_keeps_a_sharpe_interval():
    """Three trades in sixty periods: many resamples hold only flat periods; they count as a
    Sharpe of 0, so the interval exists and holds the estimate."""
    returns = np.zeros(60)
    returns[[10, 30, 50]] = [0.02, -0.01, 0.015]
    [summary] = st.summarise([st.Series(values=series_of(returns), period_seconds=HOUR)])
    assert summary.sharpe is not None and summary.sharpe_ci is not None
    assert summary.sharpe_ci[0] <= summary.sharpe <= summary.sharpe_ci[1]


def test_wiped_out_account_has_a_return_but_no_ratios():
    values = np.r_[series_of(np.full(40, 0.01)), [0.0, 0.0]]
    [summary] = st.summarise([st.Series(values=values, period_seconds=HOUR)])
    assert summary.net_return == -1 and summary.max_drawdown == 1
    assert summary.sharpe is None and summary.net_return_ci is None


# --- Market clock and grid -------------------------------------------------------------------


def epoch(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())


def test_clock_follows_market_time_and_continues_after_the_replay_wraps():
    first = st.advance_clock(
        latest_clock=None, anchor=None, market_seconds=epoch(2018, 1, 30), wall_seconds=0, step_seconds=300
    )
    assert first == epoch(2018, 1, 30)
    later = st.advance_clock(
        latest_clock=first, anchor=(first, first), market_seconds=first + 600, wall_seconds=0, step_seconds=300
    )
    assert later == first + 600
    # The recording looped back to 10 January: the clock moves one timeframe on, not back.
    wrapped = st.advance_clock(
        latest_clock=later, anchor=(later, later), market_seconds=epoch(2018, 1, 10), wall_seconds=0, step_seconds=300
    )
    assert wrapped == later + 300
    after = st.advance_clock(
        latest_clock=wrapped,
        anchor=(wrapped, epoch(2018, 1, 10)),
        market_seconds=epoch(2018, 1, 10) + 300,
        wall_seconds=0,
        step_seconds=300,
    )
    assert after == wrapped + 300
    # A close-out has no market time: it is at the latest clock.
    assert (
        st.advance_clock(latest_clock=after, anchor=None, market_seconds=None, wall_seconds=5, step_seconds=300)
        == after
    )


def test_grid_level_counts_the_buckets_a_mark_opens():
    base = epoch(2024, 1, 1)  # a Monday, 00:00: every bucket opens here
    assert st.grid_level(previous_clock=None, clock=base) == len(st.GRID_PERIODS)
    assert st.grid_level(previous_clock=base, clock=base + 30) == 0
    assert st.grid_level(previous_clock=base, clock=base + 60) == 1  # a new minute only
    assert st.grid_level(previous_clock=base + 3599, clock=base + 3600) == 5  # 1m, 5m, 15m, 30m, 1h
    assert st.grid_level(previous_clock=base - 1, clock=base) == len(st.GRID_PERIODS)  # a new week
    assert st.grid_level(previous_clock=base + 86399, clock=base + 86400) == len(st.GRID_PERIODS) - 1


def test_grid_period_choice():
    day = 86400
    # The timeframe, when marks come every candle.
    assert st.grid_period(timeframe_seconds=300, span_seconds=day, step_seconds=300) == 300
    # Marks every 12 candles of 1h: a 12h grid, not 11 zero returns out of 12.
    assert st.grid_period(timeframe_seconds=3600, span_seconds=30 * day, step_seconds=12 * 3600) == 43200
    # A long run is coarsened to at most MAX_PERIODS periods.
    assert st.grid_period(timeframe_seconds=300, span_seconds=60 * day, step_seconds=300) == 14400
    assert 60 * day / 14400 <= st.MAX_PERIODS
    # A timeframe that is not a grid period gets the next one up.
    assert st.grid_period(timeframe_seconds=180, span_seconds=day, step_seconds=180) == 300


def test_missing_grid_points_carry_the_value_before():
    positions = np.array([0, 1, 4], dtype=np.int64)
    assert st.on_grid([1.0, 2.0, 3.0], positions).tolist() == [1.0, 2.0, 2.0, 2.0, 3.0]
    assert st.typical_step([0, 60, 60, 180, 300]) == 120
