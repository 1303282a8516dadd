"""The books of one trading account: its cash and marks, positions, orders, fills and equity.

`Books` is the seam between the trading flow and where its records live. The live cycle uses
`DatabaseBooks`: every change is written at once, a fill inside one short transaction that locks
the order's row and then the account's (always in that order, so two writers of one account
cannot deadlock), and every change is published to the owner's streams after commit. A backtest
can give the same executors and cycle stages books that keep the account in memory and write its
rows in batches, and a publisher that publishes nothing per step.

The books are append-only records (orders, fills, positions, equity points): nothing here edits
a fill or an equity point; an order or a position only moves forward through its states.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from marketdata.types import MarketInfo
from trading import paper
from trading.accounting import AccountMark, BreakerMarks, mark_account, next_marks
from trading.models import EquitySnapshot, Fill, Order, Position, TradingAccount
from trading.order_ids import client_order_id
from trading.risk_types import OrderIntent

logger = logging.getLogger(__name__)

ZERO = Decimal(0)


class TradingPublisher(Protocol):
    """Where the books announce their changes (`alerts.realtime`, after commit; or nowhere)."""

    def publish_order(self, order: Order, *, owner_id: int) -> None: ...

    def publish_fill(self, fill: Fill, *, owner_id: int) -> None: ...

    def publish_position(self, position: Position, *, owner_id: int, unrealized_pnl: Decimal | None = None) -> None: ...

    def publish_equity(self, snapshot: EquitySnapshot, *, owner_id: int) -> None: ...


@dataclass(frozen=True, slots=True)
class PlannedOrder:
    """An approved order intent with its leg name (stable across retries of the cycle)."""

    leg: str
    intent: OrderIntent


@dataclass(frozen=True, slots=True)
class OpenDetails:
    """What the decision said about a position it opens (kept on the position for later prompts)."""

    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    thesis: str = ""
    invalidation: str = ""
    confidence: Decimal | None = None


def position_side_to_order_side(*, side: str, opening: bool) -> str:
    long = side == Position.Side.LONG
    return Order.Side.BUY if long == opening else Order.Side.SELL


class Books(Protocol):
    """One account's books, as the executors and the cycle stages read and write them."""

    bot_id: int

    @property
    def owner_id(self) -> int: ...

    # --- reads ---
    def account(self) -> TradingAccount: ...

    def open_positions(self) -> list[Position]: ...

    def open_position(self, symbol: str) -> Position | None: ...

    def position(self, position_id: int) -> Position: ...

    def mark(self, *, prices: Mapping[str, Decimal], positions: list[Position] | None = None) -> AccountMark: ...

    def trades_today(self, *, now: datetime) -> int: ...

    def active_orders(self, *, exclude_cycle_id: int | None = None, with_cycle: bool = False) -> list[Order]: ...

    # --- writes ---
    def update_marks(self, *, account: TradingAccount, equity: Decimal, today: date) -> BreakerMarks: ...

    def prepare_orders(self, *, cycle_id: int, slot: datetime, planned: list[PlannedOrder]) -> list[Order]: ...

    def settle(self, order: Order) -> AbstractContextManager[tuple[Order, TradingAccount]]: ...

    def apply_open(
        self,
        *,
        order: Order,
        account: TradingAccount,
        side: str,
        price: Decimal,
        fee: Decimal,
        margin: Decimal,
        info: MarketInfo,
        details: OpenDetails,
        now: datetime,
        market_time: datetime,
    ) -> Position: ...

    def apply_close(
        self,
        *,
        order: Order,
        account: TradingAccount,
        position: Position,
        result: paper.CloseResult,
        reason: str,
        now: datetime,
        market_time: datetime | None,
    ) -> Position: ...

    def save_settled(self, *, order: Order, account: TradingAccount | None) -> None: ...

    def reject(self, order: Order, reason: str) -> Order: ...

    def cancel(self, order: Order, *, reason: str, only_if: tuple[str, ...]) -> int: ...

    def mark_unknown(self, order: Order, *, error: str) -> Order: ...

    def mark_submitted(self, order: Order, *, now: datetime) -> None: ...

    def checked_until(self, position: Position, *, market_time: datetime) -> None: ...

    def exit_order(self, *, position: Position, reference: Decimal, intent: str, info: MarketInfo) -> Order: ...

    def protective_order(self, *, client_order_id: str, defaults: dict[str, Any]) -> Order: ...

    def record_equity(
        self,
        *,
        prices: Mapping[str, Decimal],
        llm_cost: Decimal = ZERO,
        llm_cost_quote: Decimal = ZERO,
        llm_cost_unconverted: Decimal = ZERO,
        cycle_id: int | None = None,
        market_time: datetime | None = None,
    ) -> EquitySnapshot: ...


class DatabaseBooks:
    """The books as database rows, written at once; changes published after commit."""

    def __init__(self, *, bot_id: int, publisher: TradingPublisher | None = None) -> None:
        self.bot_id = bot_id
        if publisher is None:
            from alerts import realtime

            publisher = realtime
        self.publisher: TradingPublisher = publisher
        self._owner_id: int | None = None

    @property
    def owner_id(self) -> int:
        if self._owner_id is None:
            self._owner_id = TradingAccount.objects.values_list("owner_id", flat=True).get(pk=self.bot_id)
        return self._owner_id

    # --- reads ---------------------------------------------------------------------------------

    def account(self) -> TradingAccount:
        account = TradingAccount.objects.get(pk=self.bot_id)
        self._owner_id = account.owner_id
        return account

    def open_positions(self) -> list[Position]:
        return list(Position.objects.filter(bot_id=self.bot_id, status=Position.Status.OPEN))

    def open_position(self, symbol: str) -> Position | None:
        return Position.objects.filter(bot_id=self.bot_id, symbol=symbol, status=Position.Status.OPEN).first()

    def position(self, position_id: int) -> Position:
        return Position.objects.get(pk=position_id, bot_id=self.bot_id)

    def mark(self, *, prices: Mapping[str, Decimal], positions: list[Position] | None = None) -> AccountMark:
        """The account marked to `prices` (its open positions read unless given)."""
        cash = self.account().cash
        return mark_account(
            cash=cash, positions=self.open_positions() if positions is None else positions, prices=prices
        )

    def trades_today(self, *, now: datetime) -> int:
        """Opening orders placed since 00:00 UTC (the daily trade limit counts these)."""
        day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return (
            Order.objects.filter(bot_id=self.bot_id, intent=Order.Intent.OPEN, created_at__gte=day_start)
            .exclude(status__in=[Order.Status.REJECTED, Order.Status.CANCELED])
            .count()
        )

    def active_orders(self, *, exclude_cycle_id: int | None = None, with_cycle: bool = False) -> list[Order]:
        orders = Order.objects.filter(bot_id=self.bot_id, status__in=Order.ACTIVE_STATUSES)
        if with_cycle:
            orders = orders.filter(cycle__isnull=False)
        if exclude_cycle_id is not None:
            orders = orders.exclude(cycle_id=exclude_cycle_id)
        return list(orders)

    # --- marks and orders ----------------------------------------------------------------------

    def update_marks(self, *, account: TradingAccount, equity: Decimal, today: date) -> BreakerMarks:
        """Keep the breakers' marks (peak equity, the equity at 00:00 UTC) of the account as read
        (`account`) now that it is marked at `equity`: one UPDATE, none when nothing moved."""
        current = BreakerMarks(
            peak_equity=account.peak_equity,
            day_start_equity=account.day_start_equity,
            day_start_date=account.day_start_date,
        )
        marks = next_marks(current=current, equity=equity, today=today)
        if marks != current:
            TradingAccount.objects.filter(pk=self.bot_id).update(
                peak_equity=marks.peak_equity,
                day_start_equity=marks.day_start_equity,
                day_start_date=marks.day_start_date,
                updated_at=timezone.now(),
            )
        return marks

    def prepare_orders(self, *, cycle_id: int, slot: datetime, planned: list[PlannedOrder]) -> list[Order]:
        """Write the cycle's orders as `pending_submit`, once: a rerun returns the existing rows."""
        ids = {p.leg: client_order_id(bot_id=self.bot_id, slot=slot, leg=p.leg) for p in planned}
        with transaction.atomic():
            existing = {o.client_order_id: o for o in Order.objects.filter(client_order_id__in=ids.values())}
            new_orders = []
            for p in planned:
                cid = ids[p.leg]
                if cid in existing:
                    continue
                opening = p.intent.intent == "open"
                new_orders.append(
                    Order(
                        bot_id=self.bot_id,
                        cycle_id=cycle_id,
                        client_order_id=cid,
                        symbol=p.intent.symbol,
                        side=position_side_to_order_side(side=p.intent.side, opening=opening),
                        type=Order.Type.MARKET,
                        intent=Order.Intent.OPEN if opening else Order.Intent.CLOSE,
                        reduce_only=not opening,
                        quantity=p.intent.quantity,
                        price=p.intent.reference_price,
                        leverage=p.intent.leverage,
                    )
                )
            # ignore_conflicts: a concurrent duplicate of this cycle cannot get here (bot lease), but
            # the unique client_order_id is the last line of defence against a second order.
            Order.objects.bulk_create(new_orders, ignore_conflicts=True)
        by_id = {o.client_order_id: o for o in Order.objects.filter(client_order_id__in=ids.values())}
        return [by_id[ids[p.leg]] for p in planned if ids[p.leg] in by_id]

    # --- fills ---------------------------------------------------------------------------------

    @contextmanager
    def settle(self, order: Order) -> Iterator[tuple[Order, TradingAccount]]:
        """One transaction for settling an order: the order's row locked, then the account's.

        Yields the fresh order and account; the caller checks the order is still in the state it
        expects (a concurrent settler may have won) before it changes anything.
        """
        with transaction.atomic():
            # Lock order then account, always in this order, so two writers of one account cannot deadlock.
            locked = Order.objects.select_for_update().get(pk=order.pk)
            account = TradingAccount.objects.select_for_update().get(pk=self.bot_id)
            self._owner_id = account.owner_id
            yield locked, account

    def apply_open(
        self,
        *,
        order: Order,
        account: TradingAccount,
        side: str,
        price: Decimal,
        fee: Decimal,
        margin: Decimal,
        info: MarketInfo,
        details: OpenDetails,
        now: datetime,
        market_time: datetime,
    ) -> Position:
        position = Position.objects.create(
            bot_id=self.bot_id,
            symbol=order.symbol,
            side=side,
            # Positions hold base units; orders hold the exchange's units (contracts on contract markets).
            quantity=order.quantity * info.contract_size,
            contract_size=info.contract_size,
            entry_price=price,
            leverage=order.leverage,
            margin=margin,
            stop_loss=details.stop_loss,
            take_profit=details.take_profit,
            liquidation_price=_liquidation(side=side, entry=price, leverage=order.leverage, info=info),
            thesis=details.thesis,
            invalidation=details.invalidation,
            confidence=details.confidence,
            fees=fee,
            checked_until=market_time,
            opened_at=now,
            opened_cycle_id=order.cycle_id,
        )
        account.cash -= margin + fee
        self._record_fill(order=order, position=position, price=price, fee=fee, market_time=market_time)
        self.publisher.publish_position(position, owner_id=account.owner_id, unrealized_pnl=ZERO)
        return position

    def apply_close(
        self,
        *,
        order: Order,
        account: TradingAccount,
        position: Position,
        result: paper.CloseResult,
        reason: str,
        now: datetime,
        market_time: datetime | None,
    ) -> Position:
        account.cash += result.cash_returned
        position.status = Position.Status.CLOSED
        position.exit_price = result.exit_price
        position.realized_pnl = result.realized_pnl
        position.fees += result.fee
        position.close_reason = reason
        position.closed_at = now
        position.save()
        self._record_fill(
            order=order, position=position, price=result.exit_price, fee=result.fee, market_time=market_time
        )
        self.publisher.publish_position(position, owner_id=account.owner_id)
        return position

    def _record_fill(
        self, *, order: Order, position: Position, price: Decimal, fee: Decimal, market_time: datetime | None
    ) -> Fill:
        order.position = position
        fill = Fill.objects.create(
            order=order,
            bot_id=self.bot_id,
            symbol=order.symbol,
            side=order.side,
            quantity=order.quantity,
            price=price,
            fee=fee,
            market_time=market_time,
        )
        self.publisher.publish_fill(fill, owner_id=self.owner_id)
        return fill

    def save_settled(self, *, order: Order, account: TradingAccount | None) -> None:
        """Write the settled order (and the account whose cash the fill moved), inside `settle`."""
        order.save()
        if account is not None:
            account.save(update_fields=["cash", "updated_at"])
        self.publisher.publish_order(order, owner_id=self.owner_id)

    def reject(self, order: Order, reason: str) -> Order:
        order.status = Order.Status.REJECTED
        order.error = reason
        order.save(update_fields=["status", "error", "updated_at"])
        logger.info("order %s rejected: %s", order.client_order_id, reason)
        return order

    def cancel(self, order: Order, *, reason: str, only_if: tuple[str, ...]) -> int:
        """Cancel the order if it is still in one of `only_if`; 1 if it was, else 0."""
        return Order.objects.filter(pk=order.pk, status__in=only_if).update(
            status=Order.Status.CANCELED, error=reason, updated_at=timezone.now()
        )

    def mark_unknown(self, order: Order, *, error: str) -> Order:
        Order.objects.filter(pk=order.pk).update(status=Order.Status.UNKNOWN, error=error[:2000])
        order.refresh_from_db()
        return order

    def mark_submitted(self, order: Order, *, now: datetime) -> None:
        # Written before the exchange is called, so a crash right after the call leads to a lookup.
        Order.objects.filter(pk=order.pk).update(submitted_at=now)
        order.submitted_at = now

    def checked_until(self, position: Position, *, market_time: datetime) -> None:
        Position.objects.filter(pk=position.pk).update(checked_until=market_time)

    def exit_order(self, *, position: Position, reference: Decimal, intent: str, info: MarketInfo) -> Order:
        """The position's exit order: the one still pending from an interrupted attempt (repriced to
        now), or a new one whose attempt number follows the failed ones."""
        from trading.order_ids import exit_client_order_id, exit_id_prefix

        earlier = list(
            Order.objects.filter(
                client_order_id__startswith=exit_id_prefix(bot_id=self.bot_id, position_id=position.pk)
            )
        )
        for order in earlier:
            if order.status == Order.Status.PENDING_SUBMIT:
                order.price, order.intent = reference, intent
                order.save(update_fields=["price", "intent", "updated_at"])
                return order
            if order.status in (
                Order.Status.OPEN,
                Order.Status.PARTIALLY_FILLED,
                Order.Status.UNKNOWN,
                Order.Status.FILLED,
            ):
                return order  # at the exchange already: reconcile it, never send a second exit
        order, _ = Order.objects.get_or_create(
            client_order_id=exit_client_order_id(bot_id=self.bot_id, position_id=position.pk, attempt=len(earlier)),
            defaults={
                "bot_id": self.bot_id,
                "position": position,
                "symbol": position.symbol,
                "side": position_side_to_order_side(side=position.side, opening=False),
                "type": Order.Type.MARKET,
                "intent": intent,
                "reduce_only": True,
                "quantity": info.round_amount(position.quantity / info.contract_size),
                "price": reference,
                "leverage": position.leverage,
            },
        )
        return order

    def protective_order(self, *, client_order_id: str, defaults: dict[str, Any]) -> Order:
        order, _ = Order.objects.get_or_create(client_order_id=client_order_id, defaults=defaults)
        return order

    # --- equity --------------------------------------------------------------------------------

    def record_equity(
        self,
        *,
        prices: Mapping[str, Decimal],
        llm_cost: Decimal = ZERO,
        llm_cost_quote: Decimal = ZERO,
        llm_cost_unconverted: Decimal = ZERO,
        cycle_id: int | None = None,
        market_time: datetime | None = None,
    ) -> EquitySnapshot:
        """Mark the account to market and store an equity point (one per cycle)."""
        account = self.mark(prices=prices)
        totals: dict[str, Any] = Position.objects.filter(bot_id=self.bot_id).aggregate(
            realized=Sum("realized_pnl", default=ZERO), fees=Sum("fees", default=ZERO)
        )
        snapshot = EquitySnapshot.objects.create(
            bot_id=self.bot_id,
            cycle_id=cycle_id,
            time=timezone.now(),
            market_time=market_time,
            equity=account.equity,
            cash=account.cash,
            unrealized_pnl=account.unrealized_pnl,
            realized_pnl=totals["realized"],
            fees=totals["fees"],
            llm_cost=llm_cost,
            llm_cost_quote=llm_cost_quote,
            llm_cost_unconverted=llm_cost_unconverted,
            # The closes marked at: the mark derives its buy-and-hold benchmark from them.
            prices={symbol: str(price) for symbol, price in prices.items()} or None,
        )
        self.publisher.publish_equity(snapshot, owner_id=self.owner_id)
        return snapshot


def _liquidation(*, side: str, entry: Decimal, leverage: Decimal, info: MarketInfo) -> Decimal | None:
    level = paper.liquidation_price(side=side, entry=entry, leverage=leverage)
    return None if level is None else info.round_price(level)
