"""How an order reaches a market: the paper executor (a simulated exchange) or the live one (ccxt).

Both implement `Executor`, so the trading flows (trading.services) and the cycle never ask which
one they hold:

- `execute` carries out one prepared order. Paper fills it at once inside one transaction that
  records the fill, the position and the cash, so an order is either pending or fully done. Live
  submits it with its client order id outside any transaction; the outcome of a timed-out submit is
  unknown, so the order is marked `unknown` and the next attempt looks it up by client id before it
  would submit again.
- `settle_stale` settles an order an interrupted earlier cycle left active.
- `resting_exits` / `release_resting` / `cancel_on_exchange` deal with what rests on an exchange.

Both write through the account's `Books` (trading.books), so a backtest runs the same executors
over books kept in memory. LLM and exchange calls never run inside a transaction.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Protocol

from django.conf import settings
from django.utils import timezone

from marketdata.types import SymbolMarket
from trading import paper
from trading.books import Books, DatabaseBooks, OpenDetails
from trading.brokers.base import (
    Broker,
    BrokerOrder,
    BrokerResult,
    PermanentBrokerError,
    TransientBrokerError,
)
from trading.models import Order, Position
from trading.order_ids import protective_client_order_id

logger = logging.getLogger(__name__)

ZERO = Decimal(0)
PROTECTIVE_INTENTS = (Order.Intent.STOP_LOSS, Order.Intent.TAKE_PROFIT)


class Executor(Protocol):
    books: Books

    def execute(
        self,
        *,
        order: Order,
        market: SymbolMarket,
        details: OpenDetails | None = None,
        close_reason: str = Position.CloseReason.DECISION,
    ) -> Order:
        """Carry out one prepared order; idempotent (an order already settled is returned as it is)."""

    def settle_stale(self, *, order: Order, markets: dict[str, SymbolMarket]) -> bool:
        """Settle an order an interrupted earlier cycle left active; True if it was settled."""

    def resting_exits(self) -> dict[int, set[str]]:
        """Protective orders resting on the exchange, by position id (stop-loss / take-profit)."""

    def release_resting(self, *, position_id: int) -> None:
        """Cancel a position's resting protective orders (before the position is closed here)."""

    def cancel_on_exchange(self, *, order: Order) -> bool:
        """Cancel an order where it was sent; False if the exchange could not be reached."""

    def fee_reserve_bps(self) -> Decimal:
        """What the risk manager reserves for fees on an open (fee + slippage, in basis points)."""

    def close(self) -> None:
        """Release connections."""


def _settings_reserve_bps() -> Decimal:
    # Slippage counts as fee: the fill moves against us, and the cash must still cover it.
    return Decimal(settings.PAPER_FEE_BPS) + Decimal(settings.PAPER_SLIPPAGE_BPS)


class PaperExecutor:
    """Simulated fills at the reference price with fees and slippage (trading.paper's maths)."""

    def __init__(self, *, books: Books, fee_bps: Decimal | None = None, slippage_bps: Decimal | None = None) -> None:
        self.books = books
        # The settings' paper fee and slippage unless given (a backtest names its own).
        self.fee_bps = Decimal(settings.PAPER_FEE_BPS) if fee_bps is None else fee_bps
        self.slippage_bps = Decimal(settings.PAPER_SLIPPAGE_BPS) if slippage_bps is None else slippage_bps

    def fee_reserve_bps(self) -> Decimal:
        return self.fee_bps + self.slippage_bps

    def execute(
        self,
        *,
        order: Order,
        market: SymbolMarket,
        details: OpenDetails | None = None,
        close_reason: str = Position.CloseReason.DECISION,
    ) -> Order:
        books = self.books
        with books.settle(order) as (order, account):
            if order.status != Order.Status.PENDING_SUBMIT:
                return order
            reference = order.price or market.price
            if order.intent == Order.Intent.LIQUIDATION:
                price = reference  # the liquidation engine takes the position at its level
            else:
                price = paper.fill_price(
                    side=order.side, reference=reference, slippage_bps=self.slippage_bps, info=market.info
                )
            now = timezone.now()
            market_time = market.candles[-1].open_time
            if order.intent == Order.Intent.OPEN:
                side = Position.Side.LONG if order.side == Order.Side.BUY else Position.Side.SHORT
                costs = paper.open_position_costs(
                    side=side,
                    quantity=order.quantity * market.info.contract_size,
                    price=price,
                    leverage=order.leverage,
                    fee_bps=self.fee_bps,
                )
                if costs.cash_required > account.cash:
                    return books.reject(
                        order, f"insufficient cash at fill: need {costs.cash_required:.8f}, have {account.cash:.8f}"
                    )
                if books.open_position(order.symbol) is not None:
                    return books.reject(order, "a position is already open on this symbol")
                books.apply_open(
                    order=order,
                    account=account,
                    side=side,
                    price=price,
                    fee=costs.fee,
                    margin=costs.margin,
                    info=market.info,
                    details=details or OpenDetails(),
                    now=now,
                    market_time=market_time,
                )
                paid = costs.fee
            else:
                position = books.open_position(order.symbol)
                if position is None:
                    return books.reject(order, "no open position to close")
                result = paper.close_position_result(
                    side=position.side,
                    quantity=position.quantity,
                    entry=position.entry_price,
                    exit_price=price,
                    margin=position.margin,
                    fee_bps=self.fee_bps,
                    liquidation=order.intent == Order.Intent.LIQUIDATION,
                )
                books.apply_close(
                    order=order,
                    account=account,
                    position=position,
                    result=result,
                    reason=close_reason,
                    now=now,
                    market_time=market_time,
                )
                paid = result.fee
            order.status = Order.Status.FILLED
            order.submitted_at = now
            order.filled_quantity = order.quantity
            order.average_price = price
            order.fee = paid
            books.save_settled(order=order, account=account)
        return order

    def settle_stale(self, *, order: Order, markets: dict[str, SymbolMarket]) -> bool:
        # A `pending_submit` order of an earlier cycle never reached the (simulated) exchange, and
        # filling it now at a later price would be a different trade: it is canceled.
        if order.status != Order.Status.PENDING_SUBMIT:
            return False
        self.books.cancel(
            order, reason="interrupted before submission; not filled", only_if=(Order.Status.PENDING_SUBMIT,)
        )
        return True

    def resting_exits(self) -> dict[int, set[str]]:
        return {}  # nothing rests anywhere: the cycle watches every level

    def release_resting(self, *, position_id: int) -> None:
        return None

    def cancel_on_exchange(self, *, order: Order) -> bool:
        return True  # never sent anywhere

    def close(self) -> None:
        return None


class LiveExecutor:
    """Orders sent through a broker (ccxt) with their client order ids; results recorded in the books."""

    def __init__(self, *, books: Books, broker: Broker) -> None:
        self.books = books
        self.broker = broker

    def fee_reserve_bps(self) -> Decimal:
        return _settings_reserve_bps()

    def execute(
        self,
        *,
        order: Order,
        market: SymbolMarket,
        details: OpenDetails | None = None,
        close_reason: str = Position.CloseReason.DECISION,
    ) -> Order:
        """Submit through the exchange. Never call inside a transaction (exchange I/O)."""
        if order.status not in (Order.Status.PENDING_SUBMIT, Order.Status.UNKNOWN):
            return order
        result: BrokerResult | None = None
        try:
            if order.submitted_at is not None:
                # Submitted before (maybe): ask the exchange first, never blindly place it again.
                result = self.broker.lookup(client_order_id=order.client_order_id, symbol=order.symbol)
            if result is None:
                self.books.mark_submitted(order, now=timezone.now())
                result = self.broker.submit(
                    BrokerOrder(
                        client_order_id=order.client_order_id,
                        symbol=order.symbol,
                        side=order.side,
                        type=order.type,
                        quantity=order.quantity,
                        price=None if order.type == Order.Type.MARKET else order.price,
                        reduce_only=order.reduce_only,
                        leverage=order.leverage,
                    )
                )
        except TransientBrokerError as exc:
            order = self.books.mark_unknown(order, error=str(exc))
            logger.warning("order %s outcome unknown: %s", order.client_order_id, exc)
            return order
        except PermanentBrokerError as exc:
            return self.books.reject(order, str(exc)[:2000])
        order = self.record_result(
            order=order, result=result, market=market, details=details, close_reason=close_reason
        )
        self._after_fill(order=order, market=market, details=details)
        return order

    def record_result(
        self,
        *,
        order: Order,
        result: BrokerResult,
        market: SymbolMarket,
        details: OpenDetails | None = None,
        close_reason: str = Position.CloseReason.DECISION,
    ) -> Order:
        """Record what the exchange says about an order: status, fills, and the position they change."""
        books = self.books
        with books.settle(order) as (order, account):
            if order.status in (Order.Status.FILLED, Order.Status.CANCELED, Order.Status.REJECTED):
                return order
            now = timezone.now()
            order.exchange_order_id = result.exchange_order_id
            order.status = result.status
            order.filled_quantity = result.filled_quantity
            order.average_price = result.average_price
            order.fee = result.fee
            moved_cash = False
            if result.status == Order.Status.FILLED and result.average_price is not None:
                moved_cash = True
                price = result.average_price
                market_time = market.candles[-1].open_time if market.candles else None
                if order.intent == Order.Intent.OPEN:
                    side = Position.Side.LONG if order.side == Order.Side.BUY else Position.Side.SHORT
                    notional = result.filled_quantity * market.info.contract_size * price
                    order.quantity = result.filled_quantity
                    books.apply_open(
                        order=order,
                        account=account,
                        side=side,
                        price=price,
                        fee=result.fee,
                        margin=paper.money(notional / order.leverage),
                        info=market.info,
                        details=details or OpenDetails(),
                        now=now,
                        market_time=market_time or now,
                    )
                else:
                    position = books.open_position(order.symbol)
                    if position is not None:
                        gross = paper.close_position_result(
                            side=position.side,
                            quantity=position.quantity,
                            entry=position.entry_price,
                            exit_price=price,
                            margin=position.margin,
                            fee_bps=ZERO,
                        )
                        # The exchange charged its own fee; isolated margin still caps what is lost.
                        paid = min(result.fee, gross.cash_returned)
                        closed = paper.CloseResult(
                            exit_price=price,
                            notional=gross.notional,
                            realized_pnl=gross.realized_pnl,
                            fee=paid,
                            cash_returned=gross.cash_returned - paid,
                        )
                        books.apply_close(
                            order=order,
                            account=account,
                            position=position,
                            result=closed,
                            reason=order.intent if order.intent in PROTECTIVE_INTENTS else close_reason,
                            now=now,
                            market_time=market_time,
                        )
            books.save_settled(order=order, account=account if moved_cash else None)
        return order

    def settle_stale(self, *, order: Order, markets: dict[str, SymbolMarket]) -> bool:
        # Looked up by client id and recorded as the exchange has it, or canceled if the exchange
        # never received it.
        try:
            result = self.broker.lookup(client_order_id=order.client_order_id, symbol=order.symbol)
        except TransientBrokerError as exc:
            logger.warning("reconcile of %s postponed: %s", order.client_order_id, exc)
            return False
        except PermanentBrokerError as exc:
            self.books.reject(order, str(exc)[:2000])
            return True
        if result is None:
            self.books.cancel(order, reason="never reached the exchange", only_if=Order.ACTIVE_STATUSES)
        elif order.symbol in markets:
            recorded = self.record_result(order=order, result=result, market=markets[order.symbol])
            self._after_fill(order=recorded, market=markets[order.symbol], details=None)
        return True

    def resting_exits(self) -> dict[int, set[str]]:
        # Levels resting on the exchange are the exchange's to fill (a second close from here would
        # race it; reconciliation records those fills). The rest are watched by the cycle.
        resting: dict[int, set[str]] = {}
        for order in self.books.active_orders():
            if order.intent in PROTECTIVE_INTENTS and order.position_id is not None:
                resting.setdefault(order.position_id, set()).add(order.intent)
        return resting

    def release_resting(self, *, position_id: int) -> None:
        # A resting stop holds the position's balance (spot): release it before exiting.
        self._protective_cancel(position_id=position_id, keep=0)

    def cancel_on_exchange(self, *, order: Order) -> bool:
        if order.submitted_at is None:
            return True
        try:
            self.broker.cancel(client_order_id=order.client_order_id, symbol=order.symbol)
        except (TransientBrokerError, PermanentBrokerError) as exc:
            logger.warning("cancel of %s failed: %s", order.client_order_id, exc)
            return False
        return True

    def close(self) -> None:
        self.broker.close()

    # --- protective orders on the exchange ------------------------------------------------------

    def _after_fill(self, *, order: Order, market: SymbolMarket, details: OpenDetails | None) -> None:
        """Keep the exchange's protective orders in step with the position.

        An open that filled gets its stop-loss and take-profit placed on the exchange, so they work
        even when no cycle runs (on spot only the stop: both would lock the same balance, and the
        cycle watches the target). A position that closed gets the remaining ones canceled.
        """
        if order.status != Order.Status.FILLED or order.position_id is None:
            return
        if order.intent == Order.Intent.OPEN:
            if details is not None:
                self._protective_place(order=order, market=market, details=details)
        else:
            self._protective_cancel(position_id=order.position_id, keep=order.pk)

    def _protective_place(self, *, order: Order, market: SymbolMarket, details: OpenDetails) -> None:
        legs = []
        if details.stop_loss is not None:
            legs.append(("sl", Order.Type.STOP, Order.Intent.STOP_LOSS, details.stop_loss))
        if details.take_profit is not None and (market.info.contract or details.stop_loss is None):
            legs.append(("tp", Order.Type.TAKE_PROFIT, Order.Intent.TAKE_PROFIT, details.take_profit))
        exit_side = Order.Side.SELL if order.side == Order.Side.BUY else Order.Side.BUY
        for leg, type_, intent, level in legs:
            # Written before the exchange is called, keyed by the open's id: a retry finds it.
            protective = self.books.protective_order(
                client_order_id=protective_client_order_id(open_client_order_id=order.client_order_id, leg=leg),
                defaults={
                    "bot_id": order.bot_id,
                    "cycle_id": order.cycle_id,
                    "position_id": order.position_id,
                    "symbol": order.symbol,
                    "side": exit_side,
                    "type": type_,
                    "intent": intent,
                    "reduce_only": True,
                    "quantity": order.filled_quantity,
                    "price": level,
                    "leverage": order.leverage,
                },
            )
            self.execute(order=protective, market=market, details=None, close_reason=intent)

    def _protective_cancel(self, *, position_id: int, keep: int) -> None:
        for other in self.books.active_orders():
            if other.position_id != position_id or other.intent not in PROTECTIVE_INTENTS or other.pk == keep:
                continue
            try:
                self.broker.cancel(client_order_id=other.client_order_id, symbol=other.symbol)
            except (TransientBrokerError, PermanentBrokerError) as exc:
                logger.warning("cancel of protective order %s failed: %s", other.client_order_id, exc)
                continue
            self.books.cancel(other, reason="position closed", only_if=Order.ACTIVE_STATUSES)


def executor_for(*, bot_id: int, broker: Broker | None = None, books: Books | None = None) -> Executor:
    """The executor of an account: live through `broker` when given, else paper (the database books
    unless other books are given)."""
    books = books or DatabaseBooks(bot_id=bot_id)
    if broker is None:
        return PaperExecutor(books=books)
    return LiveExecutor(books=books, broker=broker)
