"""Bots, the read side: owner-scoped querysets and live account marks.

Every function takes the user (or already owner-scoped bots) and reads with a constant number of
queries whatever the number of bots: per-bot figures come from grouped aggregates, never from a
query per bot. Performance, the leaderboard and the analytics are in bots.performance.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from bots.models import Bot, Cycle
from marketdata.models import Candle
from trading.models import Fill, Order, Position
from trading.services import account_mark

ZERO = Decimal(0)
UserLike = AbstractBaseUser | AnonymousUser


# --- Owner-scoped querysets ----------------------------------------------------------------------
# Every API view starts from one of these: another user's rows are simply not in the queryset, so
# they answer 404, exactly like a row that does not exist.


def bots_of(*, user: UserLike) -> QuerySet[Bot]:
    return Bot.objects.filter(owner_id=user.pk)


def cycles_of(*, user: UserLike) -> QuerySet[Cycle]:
    return Cycle.objects.filter(bot__owner_id=user.pk)


def orders_of(*, user: UserLike) -> QuerySet[Order]:
    return Order.objects.filter(bot__owner_id=user.pk)


def fills_of(*, user: UserLike) -> QuerySet[Fill]:
    return Fill.objects.filter(bot__owner_id=user.pk)


def positions_of(*, user: UserLike) -> QuerySet[Position]:
    return Position.objects.filter(bot__owner_id=user.pk)


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


# Stands in for "no market time yet": then the newest stored candle marks the position.
_FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


def latest_prices(*, bots: Sequence[Bot], symbols_by_bot: dict[int, set[str]]) -> dict[int, dict[str, Decimal]]:
    """The latest close of each (bot, symbol) at the bot's market time, in one query.

    A correlated subquery per row finds the close of the last candle at or before the bot's
    market time (uniq_candle serves its ORDER BY open_time DESC LIMIT 1), so the count of queries
    does not grow with the number of bots or markets.
    """
    pairs = [(bot.pk, symbol) for bot in bots for symbol in symbols_by_bot.get(bot.pk, ())]
    if not pairs:
        return {}
    mark_time = Subquery(
        Cycle.objects.filter(bot_id=OuterRef(OuterRef("bot_id")), market_time__isnull=False)
        .order_by("-slot")
        .values("market_time")[:1]
    )
    close = Subquery(
        Candle.objects.filter(
            exchange=OuterRef("bot__exchange"),
            symbol=OuterRef("symbol"),
            timeframe=OuterRef("bot__timeframe"),
            open_time__lte=Coalesce(mark_time, Value(_FAR_FUTURE)),
        )
        .order_by("-open_time")
        .values("close")[:1]
    )
    wanted = Q()
    for bot_id, symbol in pairs:
        wanted |= Q(bot_id=bot_id, symbol=symbol)
    rows = (
        Position.objects.filter(wanted, status=Position.Status.OPEN)
        .annotate(mark_price=close)
        .values_list("bot_id", "symbol", "mark_price")
    )
    prices: dict[int, dict[str, Decimal]] = defaultdict(dict)
    for bot_id, symbol, price in rows:
        if price is not None:
            prices[bot_id][symbol] = price
    return prices


@dataclass(slots=True)
class PositionMark:
    position: Position
    price: Decimal | None
    unrealized_pnl: Decimal | None


@dataclass(slots=True)
class BotAccount:
    """A bot's account marked to the latest prices."""

    equity: Decimal
    cash: Decimal
    unrealized_pnl: Decimal
    marks: list[PositionMark] = field(default_factory=list)


def bot_accounts(*, bots: Sequence[Bot]) -> dict[int, BotAccount]:
    """Live equity and open positions of each bot (2 queries, any number of bots).

    Bots should come from `with_market_time(...)`; without the annotation the newest candle is used.
    """
    positions_by_bot: dict[int, list[Position]] = defaultdict(list)
    for position in Position.objects.filter(bot__in=[b.pk for b in bots], status=Position.Status.OPEN).order_by(
        "opened_at"
    ):
        positions_by_bot[position.bot_id].append(position)
    symbols = {bot_id: {p.symbol for p in rows} for bot_id, rows in positions_by_bot.items()}
    prices = latest_prices(bots=[b for b in bots if b.pk in symbols], symbols_by_bot=symbols)
    accounts: dict[int, BotAccount] = {}
    for bot in bots:
        rows = positions_by_bot.get(bot.pk, [])
        known = prices.get(bot.pk, {})
        account = account_mark(bot=bot, prices=known, positions=rows)
        marks = [
            PositionMark(
                position=mark.position,
                price=known.get(mark.position.symbol),
                # Without any price the entry price stands in; say "unknown" instead of 0.
                unrealized_pnl=mark.unrealized_pnl if mark.position.symbol in known else None,
            )
            for mark in account.marks
        ]
        accounts[bot.pk] = BotAccount(
            equity=account.equity, cash=account.cash, unrealized_pnl=account.unrealized_pnl, marks=marks
        )
    return accounts


def position_marks(*, positions: list[Position]) -> dict[int, PositionMark]:
    """Live price and unrealized PnL of open positions (closed ones have none), by position id."""
    bot_ids = {p.bot_id for p in positions if p.status == Position.Status.OPEN}
    if not bot_ids:
        return {}
    bots = list(with_market_time(Bot.objects.filter(pk__in=bot_ids)))
    marks: dict[int, PositionMark] = {}
    for account in bot_accounts(bots=bots).values():
        for mark in account.marks:
            marks[mark.position.pk] = mark
    return marks


# --- Overview --------------------------------------------------------------------------------------


def bots_overview(*, user: UserLike) -> list[tuple[Bot, BotAccount]]:
    """The user's bots with their live account (the bots list of the API and the dashboard)."""
    bots = list(with_market_time(bots_of(user=user)).order_by("name", "pk"))
    accounts = bot_accounts(bots=bots)
    return [(bot, accounts[bot.pk]) for bot in bots]


def pnl_of(*, bot: Bot, account: BotAccount) -> Decimal:
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
