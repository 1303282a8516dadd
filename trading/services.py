"""Trading, the write side: accounts, and the flows that move orders, positions and cash.

The order flow keeps every order idempotent:

1. `Books.prepare_orders` writes the orders of a cycle (status `pending_submit`) with deterministic
   client order ids (trading.order_ids), in one transaction, before any exchange is called.
   Running it again for the same cycle finds the same rows instead of adding new ones.
2. The account's `Executor` (trading.executors: paper or live) carries each order out.

The flows here (reconcile, protect, close all, cancel) are the same for paper and live: they ask
the executor, never which one it is. Pure maths (fill prices, fees, PnL, liquidation, stop/target
triggers) lives in trading.paper; limits in trading.risk.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from marketdata.types import MarketSnapshot, SymbolMarket
from trading import paper
from trading.executors import Executor
from trading.models import AccountAdjustment, ExchangeAccount, Order, Position, TradingAccount

logger = logging.getLogger(__name__)

ZERO = Decimal(0)


# --- Accounts ------------------------------------------------------------------------------------


def trading_account_open(*, bot_id: int, owner_id: int, capital: Decimal, today: date) -> TradingAccount:
    """Open a bot's trading account funded with its starting capital (the marks start there too)."""
    return TradingAccount.objects.create(
        bot_id=bot_id,
        owner_id=owner_id,
        cash=capital,
        peak_equity=capital,
        day_start_equity=capital,
        day_start_date=today,
    )


def trading_account_fund(*, bot_id: int, capital: Decimal) -> None:
    """Fund an account that never traded with a new starting capital (its marks follow)."""
    TradingAccount.objects.filter(pk=bot_id).update(cash=capital, peak_equity=capital, day_start_equity=capital)


def account_adjust(*, bot_id: int, amount: Decimal, reason: str, user_id: int) -> AccountAdjustment:
    """Correct an account's cash with a new entry saying who and why (the books are never edited).

    The cash moves and the entry is written in one transaction, under the account's lock (as a
    fill does), so the ledger check's identity holds at every commit. Raises ValidationError for
    a zero amount, no reason, or a correction that would leave negative cash.
    """
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": "Say why the books are corrected."})
    if amount == 0:
        raise ValidationError({"amount": "A correction of zero changes nothing."})
    if paper.money(amount) != amount:
        # Stored with 12 decimal places: a rounded entry would disagree with the cash it moved.
        raise ValidationError({"amount": "Give the amount with at most 12 decimal places."})
    with transaction.atomic():
        account = TradingAccount.objects.select_for_update().get(pk=bot_id)
        cash = account.cash + amount
        if cash < 0:
            raise ValidationError(
                {"amount": f"The account has {account.cash:f} in free cash: it cannot give {-amount:f}."}
            )
        account.cash = cash
        account.save(update_fields=["cash", "updated_at"])
        entry = AccountAdjustment.objects.create(
            bot_id=bot_id, amount=amount, reason=reason, cash_after=cash, created_by_id=user_id
        )
    logger.info("account of bot %s adjusted by %s (user %s)", bot_id, amount, user_id)
    return entry


def exchange_account_save(*, account: ExchangeAccount, data: dict[str, Any]) -> tuple[ExchangeAccount, bool]:
    """Create or change an exchange account after the model's rules (`clean`); returns the account
    and whether it left its testnet for real money (the bots app then asks its live bots to be
    confirmed again: bots.services.exchange_account_update)."""
    with transaction.atomic():
        was_testnet = account.pk is not None and ExchangeAccount.objects.filter(pk=account.pk, testnet=True).exists()
        for key, value in data.items():
            setattr(account, key, value)
        account.clean()  # the model's rules (a testnet the exchange has); ValidationError → 400
        account.save()
    return account, was_testnet and not account.testnet


# --- The order flows -----------------------------------------------------------------------------


def orders_reconcile(*, executor: Executor, current_cycle_id: int, markets: dict[str, SymbolMarket]) -> int:
    """Settle orders an interrupted earlier cycle left active; returns how many were settled.

    Paper: a `pending_submit` order of an earlier cycle never reached the (simulated) exchange, and
    filling it now at a later price would be a different trade: it is canceled. Live: the order is
    looked up by client id and recorded as the exchange has it, or canceled if the exchange never
    received it. Exit orders (no cycle) are left to the exit flow, which reprices and reuses a
    pending one.
    """
    stale = executor.books.active_orders(exclude_cycle_id=current_cycle_id, with_cycle=True)
    return sum(1 for order in stale if executor.settle_stale(order=order, markets=markets))


@dataclass(frozen=True, slots=True)
class ExitEvent:
    position_id: int
    symbol: str
    reason: str
    price: Decimal


def positions_protect(*, executor: Executor, snapshot: MarketSnapshot) -> list[ExitEvent]:
    """Close positions whose stop-loss, take-profit or liquidation level a candle crossed.

    Checks every candle since the position was last checked (its `checked_until`), by high/low,
    so a stop between two cycles is caught even when the close came back. Runs before the decision
    and needs no decision maker. Levels resting on the exchange (live) are the exchange's to fill.
    """
    books = executor.books
    exits: list[ExitEvent] = []
    resting = executor.resting_exits()
    for position in books.open_positions():
        on_exchange = resting.get(position.pk, set())
        stop_loss = None if Order.Intent.STOP_LOSS in on_exchange else position.stop_loss
        take_profit = None if Order.Intent.TAKE_PROFIT in on_exchange else position.take_profit
        # With exchange-side orders the exchange's own liquidation engine applies, not ours.
        liquidation = None if on_exchange else position.liquidation_price
        if stop_loss is None and take_profit is None and liquidation is None and on_exchange:
            continue
        market = snapshot.markets.get(position.symbol)
        if market is None or not market.candles:
            continue
        candles = list(market.candles)
        checked = position.checked_until
        if checked is not None and candles[-1].open_time < checked:
            # The replayed market wrapped around to its beginning: check only the current candle.
            fresh = candles[-1:]
        else:
            fresh = [c for c in candles if checked is None or c.open_time > checked]
        hit: tuple[str, Decimal] | None = None
        for candle in fresh:
            hit = paper.exit_trigger(
                side=position.side, stop_loss=stop_loss, take_profit=take_profit, liquidation=liquidation, candle=candle
            )
            if hit is not None:
                break
        if hit is None:
            if fresh:
                books.checked_until(position, market_time=fresh[-1].open_time)
            continue
        reason, reference = hit
        if on_exchange:
            executor.release_resting(position_id=position.pk)
        order = books.exit_order(position=position, reference=reference, intent=reason, info=market.info)
        executor.execute(order=order, market=market, close_reason=reason)
        exits.append(ExitEvent(position_id=position.pk, symbol=position.symbol, reason=reason, price=reference))
    return exits


def positions_close_all(*, executor: Executor, markets: dict[str, SymbolMarket], reason: str) -> tuple[int, Decimal]:
    """Close every open position at market (stop command, breakers); returns (count, realized PnL net of fees)."""
    books = executor.books
    closed = 0
    realized = ZERO
    for position in books.open_positions():
        market = markets.get(position.symbol)
        if market is None:
            logger.error("no price for %s: position %s of bot %s left open", position.symbol, position.pk, books.bot_id)
            continue
        order = books.exit_order(position=position, reference=market.price, intent=Order.Intent.CLOSE, info=market.info)
        executor.execute(order=order, market=market, close_reason=reason)
        position = books.position(position.pk)
        if position.status == Position.Status.CLOSED:
            closed += 1
            realized += position.realized_pnl - position.fees
    return closed, realized


def position_close(*, executor: Executor, position: Position, market: SymbolMarket, reason: str) -> Position:
    """Close one open position at market now (a manual close); the position as it is afterwards
    (still open when a live exit's outcome is not known yet: the next cycle reconciles it)."""
    books = executor.books
    order = books.exit_order(position=position, reference=market.price, intent=Order.Intent.CLOSE, info=market.info)
    executor.execute(order=order, market=market, close_reason=reason)
    return books.position(position.pk)


def orders_cancel_open(*, executor: Executor) -> int:
    """Cancel the account's open and pending orders (stop command)."""
    canceled = 0
    for order in executor.books.active_orders():
        if not executor.cancel_on_exchange(order=order):
            continue
        canceled += executor.books.cancel(order, reason="canceled: bot stopped", only_if=Order.ACTIVE_STATUSES)
    return canceled
