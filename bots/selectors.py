"""Bots, the read side: owner-scoped querysets and live account marks.

Every function takes the user (or already owner-scoped bots) and reads with a constant number of
queries whatever the number of bots: per-bot figures come from grouped aggregates, never from a
query per bot. Performance, the leaderboard and the analytics are in bots.performance; the trading
read side (orders, fills, positions, account marks) in trading.selectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import OuterRef, QuerySet, Subquery

from bots.models import Bot, Cycle
from marketdata.models import Candle
from trading.models import Fill
from trading.selectors import AccountMarks, account_marks

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
