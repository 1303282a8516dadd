"""Performance, the leaderboard and the analytics: every figure that compares bots (read side).

The statistics are trading.statistics' (market-time grid, Sharpe, bootstrap intervals); this
module reads the marks, fills, positions and cycles they need, in a constant number of queries
whatever the number of bots, and puts currencies on the figures. README: "How the numbers are
computed".

Windows. A period (24h, 7d, 30d, all) is one window on the platform's clock, the slots every
bot's cycles run on, the same for every bot: on live data that is market time itself; on the
replay each bot's market time is a function of the slot, so the window is the same stretch of
each recording. A bot is measured from its value when the window began (its last mark before the
window; a bot that had not started held its starting capital, which earns nothing) to its latest
mark. `all` begins with the first mark of the earliest bot measured.

Currencies. Equity, PnL and fees are in the bot's quote currency. The LLM bill is USD and
converted at each call's recorded rate (bots.llm_costs); a net figure (after fees and the LLM
bill) of a window whose bill could not all be converted is None, never a sum of two currencies.
Bots are ranked on dimensionless figures only: the net return.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
from django.db import connection
from django.db.models import Count, F, FloatField, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Cast
from django.utils import timezone

from bots.models import Bot, Cycle, LLMCall
from bots.selectors import UserLike, bot_accounts, bots_of, with_market_time
from marketdata.timeframes import timeframe_seconds
from trading import statistics
from trading.models import EquitySnapshot, Fill, Position
from trading.round_trips import RoundTrip, TradeStats, model_trade_stats, round_trips, trade_stats
from trading.statistics import FloatArray

ZERO = Decimal(0)
PERIODS: dict[str, timedelta | None] = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "all": None,
}
NOT_DISTINGUISHABLE = "not distinguishable from buy-and-hold"


def period_start(period: str, *, now: datetime) -> datetime | None:
    if period not in PERIODS:
        raise ValueError(f"unknown period {period!r}; one of {', '.join(PERIODS)}")
    span = PERIODS[period]
    return None if span is None else now - span


def grid_label(seconds: int) -> str:
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _pct(part: Decimal, whole: Decimal) -> Decimal | None:
    return None if not whole else (part / whole * 100).quantize(Decimal("0.0001"))


# --- Marks -----------------------------------------------------------------------------------


MARK_FIELDS = (
    "pk",
    "time",
    "market_time",
    "market_clock",
    "grid_level",
    "equity",
    "llm_cost",
    "llm_cost_quote",
    "llm_cost_unconverted",
    "benchmark",
)


@dataclass(frozen=True, slots=True)
class Mark:
    """A stored equity mark's figures (Decimal, exact)."""

    pk: int
    time: datetime
    market_time: datetime | None
    clock: int
    level: int
    equity: Decimal
    llm_cost: Decimal  # USD, cumulative
    llm_cost_quote: Decimal  # cumulative, converted
    llm_cost_unconverted: Decimal  # cumulative USD without a rate
    benchmark: Decimal | None

    @property
    def net_value(self) -> Decimal:
        """The account less the LLM bill so far, in the quote currency."""
        return self.equity - self.llm_cost_quote


IntArray = npt.NDArray[np.int64]
EMPTY_INT: IntArray = np.zeros(0, dtype=np.int64)
EMPTY_FLOAT: FloatArray = np.zeros(0)


@dataclass(slots=True)
class BotWindow:
    """One bot's marks for a window: the one before it, the latest in it, and the grid marks
    (arrays in time order: market clock, grid level, equity, net value, benchmark)."""

    bot: Bot
    start: Mark | None = None
    latest: Mark | None = None
    first_time: datetime | None = None
    first_market_time: datetime | None = None
    clocks: IntArray = field(default_factory=lambda: EMPTY_INT)
    levels: IntArray = field(default_factory=lambda: EMPTY_INT)
    equity: FloatArray = field(default_factory=lambda: EMPTY_FLOAT)
    net: FloatArray = field(default_factory=lambda: EMPTY_FLOAT)
    benchmark: FloatArray = field(default_factory=lambda: EMPTY_FLOAT)  # NaN: unknown
    points: list[tuple[datetime, datetime | None, Decimal]] = field(default_factory=list)  # with_times only
    period_seconds: int | None = None

    @property
    def start_value(self) -> Decimal:
        return self.start.net_value if self.start is not None else self.bot.starting_capital

    @property
    def start_equity(self) -> Decimal:
        return self.start.equity if self.start is not None else self.bot.starting_capital

    @property
    def end(self) -> Mark | None:
        return self.latest or self.start

    def keep(self, mask: npt.NDArray[np.bool_]) -> None:
        self.clocks, self.levels = self.clocks[mask], self.levels[mask]
        self.equity, self.net, self.benchmark = self.equity[mask], self.net[mask], self.benchmark[mask]
        if self.points:
            self.points = [p for p, kept in zip(self.points, mask, strict=True) if kept]

    @property
    def latest_on_grid(self) -> bool:
        """Whether the latest mark is the last grid mark (else it ends the window after it)."""
        return (
            self.latest is not None
            and bool(self.clocks.size)
            and self.latest.level >= (statistics.level_of(self.period_seconds) if self.period_seconds else 0)
            and int(self.clocks[-1]) == self.latest.clock
        )


def bot_windows(*, bots: Sequence[Bot], since: datetime | None, with_times: bool = False) -> dict[int, BotWindow]:
    """Each bot's marks for the window from `since` (None: from its start) to now, in 3 queries."""
    windows = {bot.pk: BotWindow(bot=bot) for bot in bots}
    if not windows:
        return windows
    marks = EquitySnapshot.objects.filter(bot_id=OuterRef("pk"))
    inside = marks if since is None else marks.filter(time__gte=since)
    # Index equity_bot_time: one seek per bot for each bound.
    bounds = Bot.objects.filter(pk__in=list(windows)).annotate(
        start_id=Subquery(marks.filter(time__lt=since).order_by("-time", "-pk").values("pk")[:1])
        if since is not None
        else Subquery(marks.none().values("pk")[:1]),
        latest_id=Subquery(inside.order_by("-time", "-pk").values("pk")[:1]),
        first_clock=Subquery(inside.order_by("time", "pk").values("market_clock")[:1]),
        first_time=Subquery(inside.order_by("time", "pk").values("time")[:1]),
        first_market_time=Subquery(
            inside.filter(market_time__isnull=False).order_by("time", "pk").values("market_time")[:1]
        ),
    )
    first_clock: dict[int, int | None] = {}
    wanted: dict[int, tuple[int, str]] = {}
    for bot_id, start_id, latest_id, first, first_time, first_market_time in bounds.values_list(
        "pk", "start_id", "latest_id", "first_clock", "first_time", "first_market_time"
    ):
        first_clock[bot_id] = first
        windows[bot_id].first_time = first_time
        windows[bot_id].first_market_time = first_market_time
        if start_id is not None:
            wanted[start_id] = (bot_id, "start")
        if latest_id is not None:
            wanted[latest_id] = (bot_id, "latest")
    for row in EquitySnapshot.objects.filter(pk__in=list(wanted)).values_list(*MARK_FIELDS):
        mark = Mark(*row)
        bot_id, which = wanted[mark.pk]
        setattr(windows[bot_id], which, mark)

    # The grid marks: those that open a bucket of the finest grid the window allows (at most
    # MAX_PERIODS per bot); a coarser grid is a subset of them, chosen per bot in window_series.
    by_level: dict[int, list[int]] = defaultdict(list)
    for bot_id, window in windows.items():
        if window.latest is None:
            continue
        begin = window.start.clock if window.start is not None else first_clock[bot_id]
        span = window.latest.clock - (begin if begin is not None else window.latest.clock)
        period = statistics.finest_period(timeframe_seconds=_timeframe(window.bot), span_seconds=span)
        by_level[statistics.level_of(period)].append(bot_id)
    if not by_level:
        return windows
    wanted_rows = Q()
    for level, ids in by_level.items():
        wanted_rows |= Q(bot_id__in=ids, grid_level__gte=level)
    rows = EquitySnapshot.objects.filter(wanted_rows)
    if since is not None:
        rows = rows.filter(time__gte=since)
    rows = rows.order_by("bot_id", "time", "pk")
    if with_times:
        # One bot's page: Django's conversions, and the times and exact equity of each point.
        fetched = list(
            rows.values_list(
                "bot_id", "market_clock", "grid_level", "equity", "llm_cost_quote", "benchmark", "time", "market_time"
            )
        )
        for bot_id, group in _by_bot([r[0] for r in fetched]):
            chunk = fetched[group]
            window = windows[bot_id]
            window.points = [(r[6], r[7], r[3]) for r in chunk]
            numbers = np.array([[r[1], r[2], r[3], r[3] - r[4], r[5]] for r in chunk], dtype=np.float64)
            _set_arrays(window, numbers)
        return windows
    # Hundreds of thousands of rows for a large leaderboard: floats straight from the cursor,
    # into one array, split per bot.
    columns = rows.annotate(
        c_net=Cast(F("equity") - F("llm_cost_quote"), FloatField()),
        c_equity=Cast("equity", FloatField()),
        c_benchmark=Cast("benchmark", FloatField()),
    ).values_list("bot_id", "market_clock", "grid_level", "c_equity", "c_net", "c_benchmark")
    sql, params = columns.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        data = np.array(cursor.fetchall(), dtype=np.float64)  # a NULL benchmark becomes NaN
    if data.size:
        for bot_id, group in _by_bot(data[:, 0]):
            _set_arrays(windows[bot_id], data[group, 1:])
    return windows


def _by_bot(bot_ids: Any) -> list[tuple[int, slice]]:
    """(bot id, slice of its rows) of rows sorted by bot."""
    ids = np.asarray(bot_ids, dtype=np.int64)
    if not ids.size:
        return []
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    ends = np.r_[starts[1:], ids.size]
    return [(int(ids[a]), slice(int(a), int(b))) for a, b in zip(starts, ends, strict=True)]


def _set_arrays(window: BotWindow, numbers: FloatArray) -> None:
    """Columns: market clock, grid level, equity, net value, benchmark."""
    window.clocks = numbers[:, 0].astype(np.int64)
    window.levels = numbers[:, 1].astype(np.int64)
    window.equity = numbers[:, 2]
    window.net = numbers[:, 3]
    window.benchmark = numbers[:, 4]


def _timeframe(bot: Bot) -> int:
    try:
        return timeframe_seconds(bot.timeframe)
    except ValueError:
        return 60


def window_series(window: BotWindow) -> statistics.Series | None:
    """The bot's window on its grid (see trading.statistics): the value at the start, at each
    grid point and at the latest mark; None for a bot without any mark. Keeps only the grid
    marks on `window` (the arena and the equity curve draw them)."""
    end = window.end
    if end is None:
        return None
    clocks = window.clocks
    begin = window.start.clock if window.start is not None else (int(clocks[0]) if clocks.size else end.clock)
    period = statistics.grid_period(
        timeframe_seconds=_timeframe(window.bot),
        span_seconds=end.clock - begin,
        step_seconds=statistics.typical_step(clocks),
    )
    window.period_seconds = period
    window.keep(window.levels >= statistics.level_of(period))
    positions = statistics.grid_positions(window.clocks, period=period)
    values = np.concatenate([[float(window.start_value)], statistics.on_grid(window.net, positions)])
    # The benchmark starts where the bot does: its mark before the window, or 1 (the first mark's
    # prices) for a bot that starts inside it.
    start_benchmark = window.start.benchmark if window.start is not None else Decimal(1)
    benchmarks = np.concatenate(
        [
            [np.nan if start_benchmark is None else float(start_benchmark)],
            statistics.on_grid(window.benchmark, positions),
        ]
    )
    latest = window.latest
    if latest is not None and not window.latest_on_grid:
        values = np.append(values, float(latest.net_value))
        benchmarks = np.append(benchmarks, np.nan if latest.benchmark is None else float(latest.benchmark))
    # A mark without prices (a close-out) holds buy-and-hold at its last known value.
    bench = _carried(benchmarks)
    return statistics.Series(values=values, period_seconds=period, benchmark=bench)


def _carried(values: FloatArray) -> FloatArray | None:
    """Unknown (NaN) values carry the one before them; None when the first is unknown."""
    if not values.size or not np.isfinite(values[0]):
        return None
    known = np.isfinite(values)
    if known.all():
        return values
    last = np.maximum.accumulate(np.where(known, np.arange(values.size), 0))
    return values[last]


# --- Performance -------------------------------------------------------------------------------


@dataclass(slots=True)
class Performance:
    """A bot's figures over a window. Money in `quote_currency` but `llm_cost` (USD)."""

    bot_id: int
    period: str
    since: datetime | None
    quote_currency: str
    start_equity: Decimal
    equity: Decimal
    return_pct: Decimal | None  # equity change, net of fees (the LLM bill is paid outside the account)
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    total_pnl: Decimal
    fees: Decimal
    llm_cost: Decimal
    llm_cost_quote: Decimal | None
    net_pnl: Decimal | None
    net_return_pct: Decimal | None
    net_return_ci: list[Decimal | None] | None
    sharpe: Decimal | None
    sharpe_ci: list[Decimal | None] | None
    sortino: Decimal | None
    max_drawdown_pct: Decimal | None
    benchmark_return_pct: Decimal | None
    excess_return_vs_buy_and_hold_pct: Decimal | None
    excess_return_ci: list[Decimal | None] | None
    verdict: str
    periods: int
    grid: str | None
    market_start: datetime | None
    market_end: datetime | None
    win_rate: Decimal | None
    trades: int
    fills: int
    cycles: int
    invalid_outputs: int
    invalid_output_rate: Decimal | None
    started: bool
    first_time: datetime | None = None  # of the bot's first mark in the window
    unranked_reason: str = ""
    summary: statistics.Summary | None = None
    equity_series: list[dict[str, Any]] = field(default_factory=list)


def verdict_of(summary: statistics.Summary | None) -> str:
    if summary is None or summary.excess_return is None:
        return "no buy-and-hold benchmark for this window"
    if summary.excess_return_ci is None:
        return f"fewer than {statistics.MIN_PERIODS} periods: too early to tell"
    beats = summary.beats_benchmark
    if beats is None:
        return NOT_DISTINGUISHABLE
    return "beats buy-and-hold" if beats else "trails buy-and-hold"


def _grouped(queryset: QuerySet[Any], **aggregates: Any) -> dict[int, dict[str, Any]]:
    return {row["bot_id"]: row for row in queryset.values("bot_id").order_by("bot_id").annotate(**aggregates)}


def bots_performance(
    *, bots: Sequence[Bot], period: str, now: datetime | None = None, with_series: bool = False
) -> dict[int, Performance]:
    """Performance of each bot over the period's window, in a constant number of queries."""
    now = now or timezone.now()
    since = period_start(period, now=now)
    ids = [b.pk for b in bots]
    windows = bot_windows(bots=bots, since=since, with_times=with_series)
    series = {bot_id: window_series(window) for bot_id, window in windows.items()}
    measured = [(bot_id, s) for bot_id, s in series.items() if s is not None]
    summaries = dict(zip([b for b, _ in measured], statistics.summarise([s for _, s in measured]), strict=True))

    def in_period(queryset: QuerySet[Any], field_name: str) -> QuerySet[Any]:
        queryset = queryset.filter(bot_id__in=ids)
        return queryset if since is None else queryset.filter(**{f"{field_name}__gte": since})

    closed: dict[int, list[Decimal]] = defaultdict(list)
    realized: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for bot_id, pnl, fees in in_period(Position.objects.filter(status=Position.Status.CLOSED), "closed_at").values_list(
        "bot_id", "realized_pnl", "fees"
    ):
        closed[bot_id].append(pnl - fees)
        realized[bot_id] += pnl
    fills = _grouped(in_period(Fill.objects.all(), "created_at"), fees=Sum("fee", default=ZERO), count=Count("id"))
    decided = in_period(Cycle.objects.filter(kind=Cycle.Kind.TRADE, decision__isnull=False), "slot")
    cycle_counts = _grouped(decided, total=Count("id"), invalid=Count("id", filter=~Q(decision_error="")))
    started = set(
        Cycle.objects.filter(bot_id__in=ids, kind=Cycle.Kind.TRADE, status=Cycle.Status.COMPLETED)
        .values_list("bot_id", flat=True)
        .distinct()
    )
    accounts = bot_accounts(bots=list(with_market_time(Bot.objects.filter(pk__in=ids)))) if with_series else {}

    result: dict[int, Performance] = {}
    for bot in bots:
        window = windows[bot.pk]
        summary = summaries.get(bot.pk)
        end = window.end
        equity = end.equity if end is not None else bot.starting_capital
        unrealized = ZERO
        if bot.pk in accounts:
            equity, unrealized = accounts[bot.pk].equity, accounts[bot.pk].unrealized_pnl
        start_llm = window.start if window.start is not None else None
        llm_usd = (end.llm_cost - (start_llm.llm_cost if start_llm else ZERO)) if end is not None else ZERO
        unconverted = (
            (end.llm_cost_unconverted - (start_llm.llm_cost_unconverted if start_llm else ZERO)) if end else ZERO
        )
        llm_quote = (end.llm_cost_quote - (start_llm.llm_cost_quote if start_llm else ZERO)) if end else ZERO
        converted = unconverted == 0
        start_value = window.start_value
        end_value = end.net_value if end is not None else bot.starting_capital
        net_pnl = end_value - start_value if converted else None
        counts = cycle_counts.get(bot.pk, {"total": 0, "invalid": 0})
        realized_pnl = realized.get(bot.pk, ZERO)
        perf = Performance(
            bot_id=bot.pk,
            period=period,
            since=since,
            quote_currency=bot.quote_currency,
            start_equity=window.start_equity,
            equity=equity,
            # On the marks, like every figure of the window (`equity` is the live mark).
            return_pct=_pct((end.equity if end else bot.starting_capital) - window.start_equity, window.start_equity),
            realized_pnl=realized_pnl,
            unrealized_pnl=unrealized,
            total_pnl=realized_pnl + unrealized,
            fees=fills.get(bot.pk, {}).get("fees", ZERO),
            llm_cost=llm_usd,
            llm_cost_quote=llm_quote if converted else None,
            net_pnl=net_pnl,
            net_return_pct=_pct(net_pnl, start_value) if net_pnl is not None and start_value > 0 else None,
            net_return_ci=None,
            sharpe=None,
            sharpe_ci=None,
            sortino=None,
            max_drawdown_pct=None,
            benchmark_return_pct=None,
            excess_return_vs_buy_and_hold_pct=None,
            excess_return_ci=None,
            verdict=verdict_of(summary if converted else None),
            periods=summary.periods if summary is not None else 0,
            grid=grid_label(window.period_seconds) if window.period_seconds else None,
            market_start=window.start.market_time if window.start is not None else window.first_market_time,
            market_end=end.market_time if end is not None else None,
            win_rate=statistics.win_rate(closed.get(bot.pk, [])),
            trades=len(closed.get(bot.pk, [])),
            fills=fills.get(bot.pk, {}).get("count", 0),
            cycles=counts["total"],
            invalid_outputs=counts["invalid"],
            invalid_output_rate=_pct(Decimal(counts["invalid"]), Decimal(counts["total"])),
            started=bot.pk in started,
            first_time=window.first_time,
            summary=summary if converted else None,
        )
        if not converted:
            perf.unranked_reason = (
                f"part of the LLM bill (USD {unconverted.normalize():f}) has no rate into {bot.quote_currency}: "
                "figures net of it are unknown"
            )
        elif summary is not None:
            perf.sharpe = statistics.to_decimal(summary.sharpe)
            perf.sharpe_ci = _interval(summary.sharpe_ci, scale=1)
            perf.sortino = statistics.to_decimal(summary.sortino)
            perf.net_return_ci = _interval(summary.net_return_ci)
            perf.max_drawdown_pct = statistics.pct(summary.max_drawdown)
            perf.benchmark_return_pct = statistics.pct(summary.benchmark_return)
            perf.excess_return_vs_buy_and_hold_pct = statistics.pct(summary.excess_return)
            perf.excess_return_ci = _interval(summary.excess_return_ci)
        if with_series:
            perf.equity_series = _series_points(window)
        result[bot.pk] = perf
    return result


def _interval(interval: tuple[float, float] | None, *, scale: int = 100) -> list[Decimal | None] | None:
    if interval is None:
        return None
    return [statistics.to_decimal(interval[0] * scale), statistics.to_decimal(interval[1] * scale)]


def _series_points(window: BotWindow) -> list[dict[str, Any]]:
    """The equity curve on the grid (≤ MAX_PERIODS points, with the latest mark)."""
    points = [
        {"time": time, "market_time": market_time, "equity": equity} for time, market_time, equity in window.points
    ]
    latest = window.latest
    if latest is not None and not window.latest_on_grid:
        points.append({"time": latest.time, "market_time": latest.market_time, "equity": latest.equity})
    return points


def bot_performance(*, bot: Bot, period: str, now: datetime | None = None) -> Performance:
    return bots_performance(bots=[bot], period=period, now=now, with_series=True)[bot.pk]


def sharpe_so_far(*, bot: Bot) -> Decimal | None:
    """The Sharpe ratio of the bot's whole run on its market-time grid (the prompt's "Sharpe so
    far"): None until it has MIN_PERIODS periods, like everywhere else."""
    window = bot_windows(bots=[bot], since=None)[bot.pk]
    series = window_series(window)
    if series is None or series.values.size - 1 < statistics.MIN_PERIODS or not np.all(series.values > 0):
        return None
    returns = statistics.period_returns(series.values)
    sharpe = statistics.sharpe_ratio(returns, periods_per_year=statistics.periods_per_year(series.period_seconds))
    return statistics.to_decimal(sharpe, 2)


# --- Leaderboard -----------------------------------------------------------------------------------


@dataclass(slots=True)
class LeaderboardRow:
    rank: int | None
    bot: Bot
    performance: Performance

    @property
    def is_baseline(self) -> bool:
        return self.bot.provider == Bot.Provider.BASELINE


@dataclass(slots=True)
class ModelRow:
    """A model (provider + model name) over its ranked bots: the average bot, with intervals
    from the average of their bootstrap replicates."""

    rank: int | None
    provider: str
    provider_name: str
    model: str
    bots: int
    net_return_pct: Decimal | None
    net_return_ci: list[Decimal | None] | None
    sharpe: Decimal | None
    sharpe_ci: list[Decimal | None] | None
    max_drawdown_pct: Decimal | None
    excess_return_vs_buy_and_hold_pct: Decimal | None
    excess_return_ci: list[Decimal | None] | None
    verdict: str
    periods: int

    @property
    def is_baseline(self) -> bool:
        return self.provider == Bot.Provider.BASELINE


@dataclass(slots=True)
class Leaderboard:
    period: str
    window_start: datetime | None
    window_end: datetime
    rows: list[LeaderboardRow]  # ranked, then the bots that cannot be ranked (rank None)
    not_started: list[Bot]
    models: list[ModelRow]


def _rank_key(row: LeaderboardRow) -> tuple[Any, ...]:
    net = row.performance.net_return_pct
    return (net is None, -(net or ZERO), row.bot.name.lower(), row.bot.pk)


def leaderboard(*, user: UserLike, period: str = "all", now: datetime | None = None) -> Leaderboard:
    """The user's bots ranked by net return over one window (see the module docstring); bots that
    never completed a trading cycle are listed apart, never ranked."""
    now = now or timezone.now()
    bots = list(bots_of(user=user).order_by("name", "pk"))
    performance = bots_performance(bots=bots, period=period, now=now)
    started = [b for b in bots if performance[b.pk].started]
    not_started = [b for b in bots if not performance[b.pk].started]
    rows = sorted((LeaderboardRow(rank=None, bot=b, performance=performance[b.pk]) for b in started), key=_rank_key)
    rank = 0
    for row in rows:
        if row.performance.net_return_pct is not None:
            rank += 1
            row.rank = rank
        elif not row.performance.unranked_reason:
            row.performance.unranked_reason = "no equity mark in this window"
    since = period_start(period, now=now)
    window_start = since
    if since is None and started:
        firsts = [t for t in (performance[b.pk].first_time for b in started) if t is not None]
        window_start = min(firsts, default=None)
    return Leaderboard(
        period=period,
        window_start=window_start,
        window_end=now,
        rows=rows,
        not_started=not_started,
        models=model_rows([r for r in rows if r.rank is not None]),
    )


def model_rows(rows: Sequence[LeaderboardRow]) -> list[ModelRow]:
    """Ranked bots grouped by (provider, model), ranked by their average net return."""
    groups: dict[tuple[str, str], list[LeaderboardRow]] = defaultdict(list)
    for row in rows:
        groups[(row.bot.provider, row.bot.model)].append(row)
    models: list[ModelRow] = []
    for (provider, model), members in groups.items():
        summaries = [m.performance.summary for m in members if m.performance.summary is not None]
        combined = statistics.aggregate(summaries) if summaries else None
        net = [m.performance.net_return_pct for m in members if m.performance.net_return_pct is not None]
        models.append(
            ModelRow(
                rank=None,
                provider=provider,
                provider_name=members[0].bot.get_provider_display(),
                model=model,
                bots=len(members),
                # The exact average of the bots' net returns (the statistics' average is of floats).
                net_return_pct=(sum(net, ZERO) / len(net)).quantize(Decimal("0.0001")) if net else None,
                net_return_ci=_interval(combined.net_return_ci) if combined else None,
                sharpe=statistics.to_decimal(combined.sharpe) if combined else None,
                sharpe_ci=_interval(combined.sharpe_ci, scale=1) if combined else None,
                max_drawdown_pct=statistics.pct(combined.max_drawdown) if combined else None,
                excess_return_vs_buy_and_hold_pct=statistics.pct(combined.excess_return) if combined else None,
                excess_return_ci=_interval(combined.excess_return_ci) if combined else None,
                verdict=verdict_of(combined),
                periods=combined.periods if combined else 0,
            )
        )
    models.sort(key=lambda m: (m.net_return_pct is None, -(m.net_return_pct or ZERO), m.provider, m.model))
    for rank, model_row in enumerate(models, start=1):
        model_row.rank = rank if model_row.net_return_pct is not None else None
    return models


# --- Analytics -------------------------------------------------------------------------------------


@dataclass(slots=True)
class Analytics:
    """What a bot's (or a model's) trading looks like over a window, Alpha Arena style."""

    trades: TradeStats
    decisions: int
    invalid_outputs: int
    invalid_output_rate: Decimal | None
    llm_cost: Decimal  # USD
    llm_cost_per_decision: Decimal | None  # USD
    llm_cost_per_round_trip: Decimal | None  # USD
    quote_currency: str | None  # None for a model whose bots' currencies differ


@dataclass(slots=True)
class BotAnalytics:
    bot: Bot
    analytics: Analytics


@dataclass(slots=True)
class ModelAnalytics:
    provider: str
    provider_name: str
    model: str
    bots: int
    analytics: Analytics


def _usd(value: Decimal, count: int) -> Decimal | None:
    return None if not count else (value / count).quantize(Decimal("0.000001"))


def analytics(
    *, user: UserLike, period: str = "all", now: datetime | None = None
) -> tuple[list[BotAnalytics], list[ModelAnalytics]]:
    """Per bot and per model: round-trip statistics, decisions, invalid outputs and the LLM bill
    per decision and per round trip (USD: every LLM bill is in dollars). Constant queries."""
    now = now or timezone.now()
    since = period_start(period, now=now)
    bots = list(bots_of(user=user).order_by("name", "pk"))
    ids = [b.pk for b in bots]
    positions = Position.objects.filter(bot_id__in=ids, status=Position.Status.CLOSED)
    if since is not None:
        positions = positions.filter(closed_at__gte=since)
    trips_by_bot: dict[int, list[RoundTrip]] = defaultdict(list)
    for trip in round_trips(positions.order_by("closed_at", "pk")):
        trips_by_bot[trip.bot_id].append(trip)
    cycles = Cycle.objects.filter(bot_id__in=ids, kind=Cycle.Kind.TRADE, decision__isnull=False)
    calls = LLMCall.objects.filter(bot_id__in=ids)
    if since is not None:
        cycles, calls = cycles.filter(slot__gte=since), calls.filter(created_at__gte=since)
    decided = _grouped(cycles, total=Count("id"), invalid=Count("id", filter=~Q(decision_error="")))
    cost = _grouped(calls, usd=Sum("cost", default=ZERO))

    def summary(bot_ids: list[int], trades: TradeStats, currency: str | None) -> Analytics:
        decisions = sum(decided.get(b, {}).get("total", 0) for b in bot_ids)
        invalid = sum(decided.get(b, {}).get("invalid", 0) for b in bot_ids)
        usd = sum((cost.get(b, {}).get("usd", ZERO) for b in bot_ids), ZERO)
        return Analytics(
            trades=trades,
            decisions=decisions,
            invalid_outputs=invalid,
            invalid_output_rate=_pct(Decimal(invalid), Decimal(decisions)),
            llm_cost=usd,
            llm_cost_per_decision=_usd(usd, decisions),
            llm_cost_per_round_trip=_usd(usd, trades.round_trips),
            quote_currency=currency,
        )

    per_bot = [
        BotAnalytics(bot=b, analytics=summary([b.pk], trade_stats(trips_by_bot.get(b.pk, [])), b.quote_currency))
        for b in bots
    ]
    groups: dict[tuple[str, str], list[Bot]] = defaultdict(list)
    for b in bots:
        groups[(b.provider, b.model)].append(b)
    per_model = []
    for (provider, model), members in sorted(groups.items()):
        currencies = {b.quote_currency for b in members}
        trades = model_trade_stats(
            {b.pk: trips_by_bot.get(b.pk, []) for b in members}, {b.pk: b.starting_capital for b in members}
        )
        per_model.append(
            ModelAnalytics(
                provider=provider,
                provider_name=members[0].get_provider_display(),
                model=model,
                bots=len(members),
                analytics=summary([b.pk for b in members], trades, currencies.pop() if len(currencies) == 1 else None),
            )
        )
    return per_bot, per_model


# --- The arena chart ------------------------------------------------------------------------------


@dataclass(slots=True)
class ArenaLine:
    bot: Bot
    points: list[tuple[int, Decimal]]  # (market seconds since the window began, return %)


def arena(*, user: UserLike, period: str = "all", now: datetime | None = None) -> list[ArenaLine]:
    """Every started bot's account value as % return over the window, on market time elapsed
    since the window began for that bot (its grid points; ≤ MAX_PERIODS each)."""
    now = now or timezone.now()
    since = period_start(period, now=now)
    bots = list(bots_of(user=user).order_by("name", "pk"))
    windows = bot_windows(bots=bots, since=since)
    lines = []
    for bot in bots:
        window = windows[bot.pk]
        series = window_series(window)
        if series is None or window.latest is None:
            continue
        begin = (
            window.start.clock if window.start is not None else (int(window.clocks[0]) if window.clocks.size else None)
        )
        if begin is None:
            continue
        # The account's value: the LLM bill is paid outside it (the leaderboard's net figures
        # take it off where it converts).
        start = float(window.start_equity)
        clocks = [begin, *window.clocks.tolist()]
        values = [start, *window.equity.tolist()]
        if not window.latest_on_grid:
            clocks.append(window.latest.clock)
            values.append(float(window.latest.equity))
        points = [
            (int(c - begin), Decimal(repr(round((v / start - 1) * 100, 4))))
            for c, v in zip(clocks, values, strict=True)
        ]
        lines.append(ArenaLine(bot=bot, points=points))
    return lines
