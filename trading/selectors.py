"""Trading, the read side: owner-scoped querysets and accounts marked to the latest prices.

Every function reads with a constant number of queries whatever the number of accounts: prices
come from one query with a correlated subquery per position, never a query per bot.

Prices are read at the market time of the account's latest equity point (the open time of the
last candle its latest cycle saw), not "the newest candle stored", so a replayed market is never
marked with candles from its future. Before any equity point, the newest stored candle stands in.
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

from marketdata.models import Candle
from trading.accounting import mark_account
from trading.models import EquitySnapshot, ExchangeAccount, Fill, Order, Position, TradingAccount

UserLike = AbstractBaseUser | AnonymousUser

# Stands in for "never marked yet": then the newest stored candle marks the position.
_FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


# --- Owner-scoped querysets ----------------------------------------------------------------------
# Another user's rows are simply not in the queryset, so they answer 404 like a missing row.


def orders_of(*, user: UserLike) -> QuerySet[Order]:
    return Order.objects.filter(bot__owner_id=user.pk)


def fills_of(*, user: UserLike) -> QuerySet[Fill]:
    return Fill.objects.filter(bot__owner_id=user.pk)


def positions_of(*, user: UserLike) -> QuerySet[Position]:
    return Position.objects.filter(bot__owner_id=user.pk)


def exchange_accounts_of(*, user: UserLike) -> QuerySet[ExchangeAccount]:
    return ExchangeAccount.objects.filter(owner_id=user.pk)


# --- Live marks ----------------------------------------------------------------------------------


def latest_prices(*, pairs: Sequence[tuple[int, str]]) -> dict[int, dict[str, Decimal]]:
    """The latest close of each (account, symbol) with an open position, at the account's market time.

    One query: a correlated subquery per row finds the close of the last candle at or before the
    account's market time (uniq_candle serves its ORDER BY open_time DESC LIMIT 1).
    """
    if not pairs:
        return {}
    # equity_bot_time serves this: WHERE bot_id=? ORDER BY time DESC LIMIT 1.
    mark_time = Subquery(
        EquitySnapshot.objects.filter(bot_id=OuterRef(OuterRef("bot_id")), market_time__isnull=False)
        .order_by("-time")
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
class AccountMarks:
    """An account marked to the latest prices."""

    equity: Decimal
    cash: Decimal
    unrealized_pnl: Decimal
    marks: list[PositionMark] = field(default_factory=list)


def account_marks(*, bot_ids: Sequence[int]) -> dict[int, AccountMarks]:
    """Live equity and open positions of each account (3 queries, any number of accounts)."""
    cash = dict(TradingAccount.objects.filter(pk__in=bot_ids).values_list("pk", "cash"))
    positions_by_bot: dict[int, list[Position]] = defaultdict(list)
    for position in Position.objects.filter(bot_id__in=bot_ids, status=Position.Status.OPEN).order_by("opened_at"):
        positions_by_bot[position.bot_id].append(position)
    prices = latest_prices(pairs=[(bot_id, p.symbol) for bot_id, rows in positions_by_bot.items() for p in rows])
    accounts: dict[int, AccountMarks] = {}
    for bot_id in bot_ids:
        known = prices.get(bot_id, {})
        account = mark_account(
            cash=cash.get(bot_id, Decimal(0)), positions=positions_by_bot.get(bot_id, []), prices=known
        )
        marks = [
            PositionMark(
                position=mark.position,
                price=known.get(mark.position.symbol),
                # Without any price the entry price stands in; say "unknown" instead of 0.
                unrealized_pnl=mark.unrealized_pnl if mark.position.symbol in known else None,
            )
            for mark in account.marks
        ]
        accounts[bot_id] = AccountMarks(
            equity=account.equity, cash=account.cash, unrealized_pnl=account.unrealized_pnl, marks=marks
        )
    return accounts


def position_marks(*, positions: list[Position]) -> dict[int, PositionMark]:
    """Live price and unrealized PnL of open positions (closed ones have none), by position id."""
    bot_ids = sorted({p.bot_id for p in positions if p.status == Position.Status.OPEN})
    if not bot_ids:
        return {}
    marks: dict[int, PositionMark] = {}
    for account in account_marks(bot_ids=bot_ids).values():
        for mark in account.marks:
            marks[mark.position.pk] = mark
    return marks
