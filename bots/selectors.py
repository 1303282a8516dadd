"""Bots, the read side: owner-scoped querysets, live account marks, performance and the leaderboard.

Every function takes the user (or already owner-scoped bots) and reads with a constant number of
queries whatever the number of bots: per-bot figures come from grouped aggregates, never from a
query per bot (the leaderboard of a user with hundreds of bots stays a handful of queries).

PnL definitions (the API documents them too), for a period that starts at `since`:
- realized PnL: gross PnL of the positions closed in the period;
- unrealized PnL: the open positions marked to the latest price the bot's market data has seen;
- fees: fees of the fills in the period; LLM cost: cost of the LLM requests in the period;
- total PnL = realized + unrealized; net PnL = total − fees − LLM cost;
- return: equity now against the equity when the period began (the starting capital for `all`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery, Sum
from django.utils import timezone

from bots.models import Bot, Cycle, LLMCall
from marketdata.models import Candle
from trading.metrics import SECONDS_PER_YEAR, max_drawdown_pct, sharpe_ratio, win_rate
from trading.models import EquitySnapshot, Fill, Position
from trading.selectors import AccountMarks, account_marks

ZERO = Decimal(0)
PERIODS: dict[str, timedelta | None] = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "all": None,
}
UserLike = AbstractBaseUser | AnonymousUser


# --- Owner-scoped querysets ----------------------------------------------------------------------
# Every API view starts from one of these: another user's rows are simply not in the queryset, so
# they answer 404, exactly like a row that does not exist.


def bots_of(*, user: UserLike) -> QuerySet[Bot]:
    return Bot.objects.filter(owner_id=user.pk)


def cycles_of(*, user: UserLike) -> QuerySet[Cycle]:
    return Cycle.objects.filter(bot__owner_id=user.pk)


# --- Live marks ------------------------------------------------------------------------------------


def _market_time_subquery() -> Subquery:
    # The open time of the last candle the bot's latest cycle saw (uniq_cycle_slot index orders
    # the bot's cycles by slot). Prices are read at that time, not "the newest candle stored",
    # so a replayed market is never marked with candles from its future.
    return Subquery(
        Cycle.objects.filter(bot_id=OuterRef("pk"), market_time__isnull=False)
        .order_by("-slot")
        .values("market_time")[:1]
    )


def with_market_time(queryset: QuerySet[Bot]) -> QuerySet[Bot]:
    return queryset.annotate(mark_time=_market_time_subquery())


def bot_accounts(*, bots: Sequence[Bot]) -> dict[int, AccountMarks]:
    """Live equity and open positions of each bot: its trading account marked to the latest prices
    (trading.selectors.account_marks; a constant number of queries for any number of bots)."""
    return account_marks(bot_ids=[bot.pk for bot in bots])


# --- Performance -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Performance:
    bot_id: int
    period: str
    since: datetime | None
    start_equity: Decimal
    equity: Decimal
    return_pct: Decimal
    total_pnl: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees: Decimal
    llm_cost: Decimal
    net_pnl: Decimal
    win_rate: Decimal | None
    trades: int  # positions closed in the period (round trips)
    fills: int
    max_drawdown_pct: Decimal
    sharpe: Decimal | None
    cycles: int  # cycles that asked the decision maker
    invalid_outputs: int  # of which the output was rejected
    invalid_output_rate: Decimal | None
    equity_series: list[tuple[datetime, Decimal]] = field(default_factory=list)


def period_start(period: str, *, now: datetime) -> datetime | None:
    if period not in PERIODS:
        raise ValueError(f"unknown period {period!r}; one of {', '.join(PERIODS)}")
    span = PERIODS[period]
    return None if span is None else now - span


def thin(series: list[tuple[datetime, Decimal]], *, max_points: int) -> list[tuple[datetime, Decimal]]:
    """Keep at most `max_points` evenly spaced points, always the first and the last."""
    if len(series) <= max_points:
        return series
    step = (len(series) - 1) / (max_points - 1)
    return [series[round(i * step)] for i in range(max_points)]


def _pct(part: Decimal, whole: Decimal) -> Decimal:
    if whole == 0:
        return ZERO
    return (part / whole * 100).quantize(Decimal("0.0001"))


def _grouped(queryset: QuerySet[Any], **aggregates: Any) -> dict[int, dict[str, Any]]:
    return {row["bot_id"]: row for row in queryset.values("bot_id").order_by("bot_id").annotate(**aggregates)}


def bots_performance(*, bots: list[Bot], period: str, now: datetime | None = None) -> dict[int, Performance]:
    """Performance of each bot over the period, with a constant number of queries."""
    now = now or timezone.now()
    since = period_start(period, now=now)
    ids = [b.pk for b in bots]
    annotated = list(
        with_market_time(Bot.objects.filter(pk__in=ids)).annotate(
            start_equity_snapshot=Subquery(
                EquitySnapshot.objects.filter(bot_id=OuterRef("pk"), time__lt=since)
                .order_by("-time")
                .values("equity")[:1]
            )
            if since is not None
            else Subquery(EquitySnapshot.objects.none().values("equity")[:1])
        )
    )
    accounts = bot_accounts(bots=annotated)

    def in_period(queryset: QuerySet[Any], field_name: str) -> QuerySet[Any]:
        queryset = queryset.filter(bot_id__in=ids)
        return queryset if since is None else queryset.filter(**{f"{field_name}__gte": since})

    closed = in_period(Position.objects.filter(status=Position.Status.CLOSED), "closed_at")
    closed_rows: dict[int, list[Decimal]] = defaultdict(list)
    realized: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for bot_id, pnl, fees in closed.values_list("bot_id", "realized_pnl", "fees"):
        closed_rows[bot_id].append(pnl - fees)
        realized[bot_id] += pnl
    fills = _grouped(in_period(Fill.objects.all(), "created_at"), fees=Sum("fee", default=ZERO), count=Count("id"))
    llm = _grouped(in_period(LLMCall.objects.all(), "created_at"), cost=Sum("cost", default=ZERO))
    decided = in_period(Cycle.objects.filter(kind=Cycle.Kind.TRADE, decision__isnull=False), "slot")
    cycle_counts = _grouped(decided, total=Count("id"), invalid=Count("id", filter=~Q(decision_error="")))
    series: dict[int, list[tuple[datetime, Decimal]]] = defaultdict(list)
    for bot_id, time, equity in (
        in_period(EquitySnapshot.objects.all(), "time")
        .order_by("bot_id", "time")
        .values_list("bot_id", "time", "equity")
    ):
        series[bot_id].append((time, equity))

    result: dict[int, Performance] = {}
    for bot in annotated:
        account = accounts[bot.pk]
        points = series.get(bot.pk, [])
        # Equity when the period began: the last snapshot before it. Without one the bot had not
        # run yet (every cycle records a snapshot), so its account still held the starting
        # capital; the period's first snapshot would already include its first trade and fee.
        start = bot.starting_capital
        if since is not None and bot.start_equity_snapshot is not None:
            start = bot.start_equity_snapshot
        equities = [start] + [equity for _, equity in points] + [account.equity]
        fee_total = fills.get(bot.pk, {}).get("fees", ZERO)
        # For `all` the running total on the row equals the sum of the calls, without the scan.
        llm_cost = bot.llm_cost_total if since is None else llm.get(bot.pk, {}).get("cost", ZERO)
        realized_pnl = realized.get(bot.pk, ZERO)
        total = realized_pnl + account.unrealized_pnl
        counts = cycle_counts.get(bot.pk, {"total": 0, "invalid": 0})
        result[bot.pk] = Performance(
            bot_id=bot.pk,
            period=period,
            since=since,
            start_equity=start,
            equity=account.equity,
            return_pct=_pct(account.equity - start, start),
            total_pnl=total,
            realized_pnl=realized_pnl,
            unrealized_pnl=account.unrealized_pnl,
            fees=fee_total,
            llm_cost=llm_cost,
            net_pnl=total - fee_total - llm_cost,
            win_rate=win_rate(closed_rows.get(bot.pk, [])),
            trades=len(closed_rows.get(bot.pk, [])),
            fills=fills.get(bot.pk, {}).get("count", 0),
            max_drawdown_pct=max_drawdown_pct(equities),
            # Only the per-cycle points are evenly spaced returns; the start and the live mark
            # would add zero or irregular returns and bias the ratio.
            sharpe=sharpe_ratio([e for _, e in points], SECONDS_PER_YEAR / max(bot.interval_seconds, 1)),
            cycles=counts["total"],
            invalid_outputs=counts["invalid"],
            invalid_output_rate=_pct(Decimal(counts["invalid"]), Decimal(counts["total"])) if counts["total"] else None,
            equity_series=thin(points, max_points=settings.PERFORMANCE_MAX_POINTS),
        )
    return result


def bot_performance(*, bot: Bot, period: str, now: datetime | None = None) -> Performance:
    return bots_performance(bots=[bot], period=period, now=now)[bot.pk]


@dataclass(slots=True)
class LeaderboardRow:
    rank: int
    bot: Bot
    performance: Performance

    @property
    def is_baseline(self) -> bool:
        return self.bot.provider == Bot.Provider.BASELINE


def leaderboard(*, user: UserLike, period: str = "all", now: datetime | None = None) -> list[LeaderboardRow]:
    """The user's bots (LLM bots and rule baselines alike) ranked by return, then net PnL."""
    bots = list(bots_of(user=user))
    performance = bots_performance(bots=bots, period=period, now=now)
    ranked = sorted(
        bots, key=lambda b: (-performance[b.pk].return_pct, -performance[b.pk].net_pnl, b.name.lower(), b.pk)
    )
    return [LeaderboardRow(rank=i + 1, bot=bot, performance=performance[bot.pk]) for i, bot in enumerate(ranked)]


def bots_overview(*, user: UserLike) -> list[tuple[Bot, AccountMarks]]:
    """The user's bots with their live account (the bots list of the API and the dashboard)."""
    bots = list(with_market_time(bots_of(user=user)).order_by("name", "pk"))
    accounts = bot_accounts(bots=bots)
    return [(bot, accounts[bot.pk]) for bot in bots]


def pnl_of(*, bot: Bot, account: AccountMarks) -> Decimal:
    """Equity change since the start (net of fees; LLM cost is billed outside the account)."""
    return account.equity - bot.starting_capital


def candles_for(*, bot: Bot, symbol: str, limit: int = 300) -> list[Candle]:
    """The latest candles of one of the bot's markets up to its market time (the price chart)."""
    mark_time = (
        Cycle.objects.filter(bot=bot, market_time__isnull=False)
        .order_by("-slot")
        .values_list("market_time", flat=True)
        .first()
    )
    # A stop between cycles fills on a later candle: show up to it, so its exit is on the chart.
    last_fill = (
        Fill.objects.filter(bot=bot, market_time__isnull=False)
        .order_by("-market_time")
        .values_list("market_time", flat=True)
        .first()
    )
    bound = max((t for t in (mark_time, last_fill) if t is not None), default=None)
    candles = Candle.objects.filter(exchange=bot.exchange, symbol=symbol, timeframe=bot.timeframe)
    if bound is not None:
        candles = candles.filter(open_time__lte=bound)
    return list(reversed(candles.order_by("-open_time")[:limit]))
