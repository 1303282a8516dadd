"""Trading, the write side: orders, fills, positions and equity in the database.

The order flow keeps every order idempotent:

1. `orders_prepare` writes the orders of a cycle (status `pending_submit`) with deterministic
   client order ids, in one transaction, before any exchange is called. Running it again for the
   same cycle finds the same rows instead of adding new ones.
2. `order_execute` carries one order out. The paper broker fills inside one transaction that
   records the fill, the position and the cash, so an order is either pending or fully done. The
   live broker calls the exchange outside any transaction, and a retry looks the order up by its
   client id before it would submit again.

Pure maths (fill prices, fees, PnL, liquidation, stop/target triggers) lives in trading.paper;
limits in trading.risk. This module only moves rows.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from alerts import realtime
from marketdata.types import MarketInfo, MarketSnapshot, SymbolMarket
from trading import paper
from trading.brokers.base import (
    Broker,
    BrokerOrder,
    BrokerResult,
    PermanentBrokerError,
    TransientBrokerError,
)
from trading.models import EquitySnapshot, Fill, Order, Position
from trading.risk_types import OrderIntent

if TYPE_CHECKING:
    from bots.models import Bot, Cycle

logger = logging.getLogger(__name__)

ZERO = Decimal(0)


def client_order_id(*, bot_id: int, slot: datetime, leg: str) -> str:
    """Deterministic id of one order leg of one bot's slot (≤ 36 chars, as Binance allows)."""
    return f"ta-{bot_id}-{int(slot.timestamp())}-{leg}"


def exit_client_order_id(*, bot_id: int, position_id: int, attempt: int = 0) -> str:
    """A position is closed at most once, so its exit leg is keyed by the position (and by the
    attempt, when an earlier exit order of it was rejected or canceled)."""
    return f"ta-{bot_id}-p{position_id}-x{attempt}"


def position_side_to_order_side(*, side: str, opening: bool) -> str:
    long = side == Position.Side.LONG
    return Order.Side.BUY if long == opening else Order.Side.SELL


# --- Account ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class OpenPositionMark:
    position: Position
    price: Decimal
    unrealized_pnl: Decimal


@dataclass(slots=True)
class Account:
    """The bot's account marked to the given prices."""

    cash: Decimal
    equity: Decimal
    unrealized_pnl: Decimal
    marks: list[OpenPositionMark] = field(default_factory=list)

    @property
    def exposure(self) -> Decimal:
        return sum((m.position.quantity * m.price for m in self.marks), ZERO)


def account_mark(*, bot: Bot, prices: dict[str, Decimal], positions: Iterable[Position] | None = None) -> Account:
    """Equity = free cash + each open position's margin and unrealized PnL (isolated margin)."""
    open_positions = (
        list(positions) if positions is not None else list(bot.positions.filter(status=Position.Status.OPEN))
    )
    marks: list[OpenPositionMark] = []
    for position in open_positions:
        price = prices.get(position.symbol, position.entry_price)
        upnl = paper.unrealized_pnl(
            side=position.side, quantity=position.quantity, entry=position.entry_price, price=price
        )
        # Isolated margin: a position can lose at most its margin.
        upnl = max(upnl, -position.margin)
        marks.append(OpenPositionMark(position=position, price=price, unrealized_pnl=upnl))
    unrealized = sum((m.unrealized_pnl for m in marks), ZERO)
    equity = bot.cash + sum((m.position.margin for m in marks), ZERO) + unrealized
    return Account(cash=bot.cash, equity=equity, unrealized_pnl=unrealized, marks=marks)


def trades_today(*, bot_id: int, now: datetime) -> int:
    """Opening orders placed since 00:00 UTC (the daily trade limit counts these)."""
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return (
        Order.objects.filter(bot_id=bot_id, intent=Order.Intent.OPEN, created_at__gte=day_start)
        .exclude(status__in=[Order.Status.REJECTED, Order.Status.CANCELED])
        .count()
    )


# --- Orders ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlannedOrder:
    """An approved order intent with its leg name (stable across retries of the cycle)."""

    leg: str
    intent: OrderIntent


def orders_prepare(*, bot: Bot, cycle: Cycle, planned: list[PlannedOrder]) -> list[Order]:
    """Write the cycle's orders as `pending_submit`, once: a rerun returns the existing rows."""
    ids = {p.leg: client_order_id(bot_id=bot.pk, slot=cycle.slot, leg=p.leg) for p in planned}
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
                    bot=bot,
                    cycle=cycle,
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


@dataclass(frozen=True, slots=True)
class OpenDetails:
    """What the decision said about a position it opens (kept on the position for later prompts)."""

    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    thesis: str = ""
    invalidation: str = ""
    confidence: Decimal | None = None


def order_execute(
    *,
    order: Order,
    market: SymbolMarket,
    details: OpenDetails | None = None,
    broker: Broker | None = None,
    close_reason: str = Position.CloseReason.DECISION,
) -> Order:
    """Carry out one prepared order: paper fill (no broker) or live submission (broker given).

    Idempotent: an order that is no longer `pending_submit` (or `unknown` for live) is returned as
    it is. Never call inside a transaction when a broker is given (exchange I/O).
    """
    if broker is None:
        return _execute_paper(order=order, market=market, details=details, close_reason=close_reason)
    return _execute_live(order=order, market=market, details=details, broker=broker, close_reason=close_reason)


def _execute_paper(*, order: Order, market: SymbolMarket, details: OpenDetails | None, close_reason: str) -> Order:
    from bots.models import Bot

    with transaction.atomic():
        # Lock order then bot, always in this order, so two writers of one bot cannot deadlock.
        order = Order.objects.select_for_update().get(pk=order.pk)
        if order.status != Order.Status.PENDING_SUBMIT:
            return order
        bot = Bot.objects.select_for_update().get(pk=order.bot_id)
        reference = order.price or market.price
        if order.intent == Order.Intent.LIQUIDATION:
            price = reference  # the liquidation engine takes the position at its level
        else:
            price = paper.fill_price(
                side=order.side, reference=reference, slippage_bps=settings.PAPER_SLIPPAGE_BPS, info=market.info
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
                fee_bps=settings.PAPER_FEE_BPS,
            )
            if costs.cash_required > bot.cash:
                return _reject(order, f"insufficient cash at fill: need {costs.cash_required:.8f}, have {bot.cash:.8f}")
            if Position.objects.filter(bot=bot, symbol=order.symbol, status=Position.Status.OPEN).exists():
                return _reject(order, "a position is already open on this symbol")
            _apply_open(
                bot=bot,
                order=order,
                side=side,
                price=price,
                fee=costs.fee,
                margin=costs.margin,
                market=market,
                details=details or OpenDetails(),
                now=now,
                market_time=market_time,
            )
            paid = costs.fee
        else:
            position = Position.objects.filter(bot=bot, symbol=order.symbol, status=Position.Status.OPEN).first()
            if position is None:
                return _reject(order, "no open position to close")
            result = paper.close_position_result(
                side=position.side,
                quantity=position.quantity,
                entry=position.entry_price,
                exit_price=price,
                margin=position.margin,
                fee_bps=settings.PAPER_FEE_BPS,
                liquidation=order.intent == Order.Intent.LIQUIDATION,
            )
            _apply_close(
                bot=bot,
                order=order,
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
        order.save()
        bot.save(update_fields=["cash", "updated_at"])
        realtime.publish_order(order, owner_id=bot.owner_id)
    return order


def _reject(order: Order, reason: str) -> Order:
    order.status = Order.Status.REJECTED
    order.error = reason
    order.save(update_fields=["status", "error", "updated_at"])
    logger.info("order %s rejected: %s", order.client_order_id, reason)
    return order


def _apply_open(
    *,
    bot: Bot,
    order: Order,
    side: str,
    price: Decimal,
    fee: Decimal,
    margin: Decimal,
    market: SymbolMarket,
    details: OpenDetails,
    now: datetime,
    market_time: datetime,
) -> Position:
    position = Position.objects.create(
        bot=bot,
        symbol=order.symbol,
        side=side,
        # Positions hold base units; orders hold the exchange's units (contracts on contract markets).
        quantity=order.quantity * market.info.contract_size,
        entry_price=price,
        leverage=order.leverage,
        margin=margin,
        stop_loss=details.stop_loss,
        take_profit=details.take_profit,
        liquidation_price=_liquidation(side=side, entry=price, leverage=order.leverage, info=market.info),
        thesis=details.thesis,
        invalidation=details.invalidation,
        confidence=details.confidence,
        fees=fee,
        checked_until=market_time,
        opened_at=now,
        opened_cycle_id=order.cycle_id,
    )
    bot.cash -= margin + fee
    _record_fill(bot=bot, order=order, position=position, price=price, fee=fee, market_time=market_time)
    realtime.publish_position(position, owner_id=bot.owner_id, unrealized_pnl=ZERO)
    return position


def _record_fill(
    *, bot: Bot, order: Order, position: Position, price: Decimal, fee: Decimal, market_time: datetime | None
) -> Fill:
    order.position = position
    fill = Fill.objects.create(
        order=order,
        bot=bot,
        symbol=order.symbol,
        side=order.side,
        quantity=order.quantity,
        price=price,
        fee=fee,
        market_time=market_time,
    )
    realtime.publish_fill(fill, owner_id=bot.owner_id)
    return fill


def _liquidation(*, side: str, entry: Decimal, leverage: Decimal, info: MarketInfo) -> Decimal | None:
    level = paper.liquidation_price(side=side, entry=entry, leverage=leverage)
    return None if level is None else info.round_price(level)


def _apply_close(
    *,
    bot: Bot,
    order: Order,
    position: Position,
    result: paper.CloseResult,
    reason: str,
    now: datetime,
    market_time: datetime | None,
) -> Position:
    bot.cash += result.cash_returned
    position.status = Position.Status.CLOSED
    position.exit_price = result.exit_price
    position.realized_pnl = result.realized_pnl
    position.fees += result.fee
    position.close_reason = reason
    position.closed_at = now
    position.save()
    _record_fill(
        bot=bot, order=order, position=position, price=result.exit_price, fee=result.fee, market_time=market_time
    )
    realtime.publish_position(position, owner_id=bot.owner_id)
    return position


def _execute_live(
    *, order: Order, market: SymbolMarket, details: OpenDetails | None, broker: Broker, close_reason: str
) -> Order:
    """Submit through the exchange. The outcome of a timed-out submit is unknown: the order is
    marked `unknown` and the next attempt looks it up by client id before it would resubmit."""
    if order.status not in (Order.Status.PENDING_SUBMIT, Order.Status.UNKNOWN):
        return order
    result: BrokerResult | None = None
    try:
        if order.submitted_at is not None:
            # Submitted before (maybe): ask the exchange first, never blindly place it again.
            result = broker.lookup(client_order_id=order.client_order_id, symbol=order.symbol)
        if result is None:
            # Written before the call, so a crash right after the call still leads to a lookup.
            Order.objects.filter(pk=order.pk).update(submitted_at=timezone.now())
            order.submitted_at = timezone.now()
            result = broker.submit(
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
        Order.objects.filter(pk=order.pk).update(status=Order.Status.UNKNOWN, error=str(exc)[:2000])
        order.refresh_from_db()
        logger.warning("order %s outcome unknown: %s", order.client_order_id, exc)
        return order
    except PermanentBrokerError as exc:
        return _reject(order, str(exc)[:2000])
    order = order_record_result(order=order, result=result, market=market, details=details, close_reason=close_reason)
    _after_live_fill(order=order, market=market, details=details, broker=broker)
    return order


PROTECTIVE_INTENTS = (Order.Intent.STOP_LOSS, Order.Intent.TAKE_PROFIT)


def _after_live_fill(*, order: Order, market: SymbolMarket, details: OpenDetails | None, broker: Broker) -> None:
    """Keep the exchange's protective orders in step with the position.

    An open that filled gets its stop-loss and take-profit placed on the exchange, so they work
    even when no cycle runs (on spot only the stop: both would lock the same balance, and the
    cycle watches the target). A position that closed gets the remaining ones canceled.
    """
    if order.status != Order.Status.FILLED or order.position_id is None:
        return
    if order.intent == Order.Intent.OPEN:
        if details is not None:
            _protective_place(order=order, market=market, details=details, broker=broker)
    else:
        _protective_cancel(position_id=order.position_id, broker=broker, keep=order.pk)


def _protective_place(*, order: Order, market: SymbolMarket, details: OpenDetails, broker: Broker) -> None:
    legs = []
    if details.stop_loss is not None:
        legs.append(("sl", Order.Type.STOP, Order.Intent.STOP_LOSS, details.stop_loss))
    if details.take_profit is not None and (market.info.contract or details.stop_loss is None):
        legs.append(("tp", Order.Type.TAKE_PROFIT, Order.Intent.TAKE_PROFIT, details.take_profit))
    exit_side = Order.Side.SELL if order.side == Order.Side.BUY else Order.Side.BUY
    for suffix, type_, intent, level in legs:
        # Written before the exchange is called, keyed by the open's id: a retry finds it.
        protective, _ = Order.objects.get_or_create(
            client_order_id=f"{order.client_order_id}-{suffix}",
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
        _execute_live(order=protective, market=market, details=None, broker=broker, close_reason=intent)


def _protective_cancel(*, position_id: int, broker: Broker, keep: int) -> None:
    for other in Order.objects.filter(
        position_id=position_id, intent__in=PROTECTIVE_INTENTS, status__in=Order.ACTIVE_STATUSES
    ).exclude(pk=keep):
        try:
            broker.cancel(client_order_id=other.client_order_id, symbol=other.symbol)
        except (TransientBrokerError, PermanentBrokerError) as exc:
            logger.warning("cancel of protective order %s failed: %s", other.client_order_id, exc)
            continue
        Order.objects.filter(pk=other.pk, status__in=Order.ACTIVE_STATUSES).update(
            status=Order.Status.CANCELED, error="position closed", updated_at=timezone.now()
        )


def order_record_result(
    *,
    order: Order,
    result: BrokerResult,
    market: SymbolMarket,
    details: OpenDetails | None = None,
    close_reason: str = Position.CloseReason.DECISION,
) -> Order:
    """Record what the exchange says about an order: status, fills, and the position they change."""
    from bots.models import Bot

    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk)
        if order.status in (Order.Status.FILLED, Order.Status.CANCELED, Order.Status.REJECTED):
            return order
        bot = Bot.objects.select_for_update().get(pk=order.bot_id)
        now = timezone.now()
        order.exchange_order_id = result.exchange_order_id
        order.status = result.status
        order.filled_quantity = result.filled_quantity
        order.average_price = result.average_price
        order.fee = result.fee
        if result.status == Order.Status.FILLED and result.average_price is not None:
            price = result.average_price
            market_time = market.candles[-1].open_time if market.candles else None
            if order.intent == Order.Intent.OPEN:
                side = Position.Side.LONG if order.side == Order.Side.BUY else Position.Side.SHORT
                notional = result.filled_quantity * market.info.contract_size * price
                order.quantity = result.filled_quantity
                _apply_open(
                    bot=bot,
                    order=order,
                    side=side,
                    price=price,
                    fee=result.fee,
                    margin=paper.money(notional / order.leverage),
                    market=market,
                    details=details or OpenDetails(),
                    now=now,
                    market_time=market_time or now,
                )
            else:
                position = Position.objects.filter(bot=bot, symbol=order.symbol, status=Position.Status.OPEN).first()
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
                    _apply_close(
                        bot=bot,
                        order=order,
                        position=position,
                        result=closed,
                        reason=order.intent if order.intent in PROTECTIVE_INTENTS else close_reason,
                        now=now,
                        market_time=market_time,
                    )
            bot.save(update_fields=["cash", "updated_at"])
        order.save()
        realtime.publish_order(order, owner_id=bot.owner_id)
    return order


def orders_reconcile(
    *, bot: Bot, broker: Broker | None, current_cycle_id: int, markets: dict[str, SymbolMarket]
) -> int:
    """Settle orders an interrupted earlier cycle left active; returns how many were settled.

    Paper: a `pending_submit` order of an earlier cycle never reached the (simulated) exchange,
    and filling it now at a later price would be a different trade: it is canceled. Live: the
    order is looked up by client id and recorded as the exchange has it, or canceled if the
    exchange never received it.
    """
    # Exit orders (no cycle) are left to the exit flow, which reprices and reuses a pending one.
    stale = list(
        Order.objects.filter(bot=bot, status__in=Order.ACTIVE_STATUSES, cycle__isnull=False).exclude(
            cycle_id=current_cycle_id
        )
    )
    settled = 0
    for order in stale:
        if broker is None:
            if order.status == Order.Status.PENDING_SUBMIT:
                Order.objects.filter(pk=order.pk, status=Order.Status.PENDING_SUBMIT).update(
                    status=Order.Status.CANCELED,
                    error="interrupted before submission; not filled",
                    updated_at=timezone.now(),
                )
                settled += 1
            continue
        try:
            result = broker.lookup(client_order_id=order.client_order_id, symbol=order.symbol)
        except TransientBrokerError as exc:
            logger.warning("reconcile of %s postponed: %s", order.client_order_id, exc)
            continue
        except PermanentBrokerError as exc:
            _reject(order, str(exc)[:2000])
            settled += 1
            continue
        if result is None:
            Order.objects.filter(pk=order.pk).update(
                status=Order.Status.CANCELED, error="never reached the exchange", updated_at=timezone.now()
            )
        elif order.symbol in markets:
            recorded = order_record_result(order=order, result=result, market=markets[order.symbol])
            _after_live_fill(order=recorded, market=markets[order.symbol], details=None, broker=broker)
        settled += 1
    return settled


# --- Exits that never wait for a decision ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExitEvent:
    position_id: int
    symbol: str
    reason: str
    price: Decimal


def positions_protect(*, bot: Bot, snapshot: MarketSnapshot, broker: Broker | None = None) -> list[ExitEvent]:
    """Close positions whose stop-loss, take-profit or liquidation level a candle crossed.

    Checks every candle since the position was last checked (its `checked_until`), by high/low,
    so a stop between two cycles is caught even when the close came back. Runs before the decision
    and needs no decision maker.
    """
    exits: list[ExitEvent] = []
    resting: dict[int, set[str]] = {}
    if broker is not None:
        # Levels resting on the exchange are the exchange's to fill (a second close from here
        # would race it; reconciliation records those fills). The rest are watched here.
        for position_id, intent in Order.objects.filter(
            bot=bot, intent__in=PROTECTIVE_INTENTS, status__in=Order.ACTIVE_STATUSES, position__isnull=False
        ).values_list("position_id", "intent"):
            resting.setdefault(position_id, set()).add(intent)
    for position in list(bot.positions.filter(status=Position.Status.OPEN)):
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
                Position.objects.filter(pk=position.pk).update(checked_until=fresh[-1].open_time)
            continue
        reason, reference = hit
        if on_exchange and broker is not None:
            # A resting stop holds the position's balance (spot): release it before exiting.
            _protective_cancel(position_id=position.pk, broker=broker, keep=0)
        order = _exit_order(bot=bot, position=position, reference=reference, intent=reason, info=market.info)
        order_execute(order=order, market=market, broker=broker, close_reason=reason)
        exits.append(ExitEvent(position_id=position.pk, symbol=position.symbol, reason=reason, price=reference))
    return exits


def _exit_order(*, bot: Bot, position: Position, reference: Decimal, intent: str, info: MarketInfo) -> Order:
    """The position's exit order: the one still pending from an interrupted attempt (repriced to
    now), or a new one whose attempt number follows the failed ones."""
    prefix = exit_client_order_id(bot_id=bot.pk, position_id=position.pk, attempt=0)[:-1]
    earlier = list(Order.objects.filter(client_order_id__startswith=prefix))
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
        client_order_id=exit_client_order_id(bot_id=bot.pk, position_id=position.pk, attempt=len(earlier)),
        defaults={
            "bot": bot,
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


def positions_close_all(
    *, bot: Bot, markets: dict[str, SymbolMarket], reason: str, broker: Broker | None = None
) -> tuple[int, Decimal]:
    """Close every open position at market (stop command, breakers); returns (count, realized PnL net of fees)."""
    closed = 0
    realized = ZERO
    for position in list(bot.positions.filter(status=Position.Status.OPEN)):
        market = markets.get(position.symbol)
        if market is None:
            logger.error("no price for %s: position %s of bot %s left open", position.symbol, position.pk, bot.pk)
            continue
        order = _exit_order(
            bot=bot, position=position, reference=market.price, intent=Order.Intent.CLOSE, info=market.info
        )
        order_execute(order=order, market=market, broker=broker, close_reason=reason)
        position.refresh_from_db()
        if position.status == Position.Status.CLOSED:
            closed += 1
            realized += position.realized_pnl - position.fees
    return closed, realized


def position_close(
    *, bot: Bot, position: Position, market: SymbolMarket, reason: str, broker: Broker | None = None
) -> Position:
    """Close one open position at market now (a manual close); the position as it is afterwards
    (still open when a live exit's outcome is not known yet: the next cycle reconciles it)."""
    order = _exit_order(bot=bot, position=position, reference=market.price, intent=Order.Intent.CLOSE, info=market.info)
    order_execute(order=order, market=market, broker=broker, close_reason=reason)
    position.refresh_from_db()
    return position


def orders_cancel_open(*, bot: Bot, broker: Broker | None = None) -> int:
    """Cancel the bot's open and pending orders (stop command)."""
    canceled = 0
    for order in list(Order.objects.filter(bot=bot, status__in=Order.ACTIVE_STATUSES)):
        if broker is not None and order.submitted_at is not None:
            try:
                broker.cancel(client_order_id=order.client_order_id, symbol=order.symbol)
            except (TransientBrokerError, PermanentBrokerError) as exc:
                logger.warning("cancel of %s failed: %s", order.client_order_id, exc)
                continue
        updated = Order.objects.filter(pk=order.pk, status__in=Order.ACTIVE_STATUSES).update(
            status=Order.Status.CANCELED, error="canceled: bot stopped", updated_at=timezone.now()
        )
        canceled += updated
    return canceled


# --- Equity ----------------------------------------------------------------------------------------


def equity_record(
    *, bot: Bot, prices: dict[str, Decimal], cycle: Cycle | None = None, market_time: datetime | None = None
) -> EquitySnapshot:
    """Mark the account to market and store an equity point (one per cycle)."""
    account = account_mark(bot=bot, prices=prices)
    totals: dict[str, Any] = Position.objects.filter(bot=bot).aggregate(
        realized=Sum("realized_pnl", default=ZERO), fees=Sum("fees", default=ZERO)
    )
    snapshot = EquitySnapshot.objects.create(
        bot=bot,
        cycle=cycle,
        time=timezone.now(),
        market_time=market_time,
        equity=account.equity,
        cash=account.cash,
        unrealized_pnl=account.unrealized_pnl,
        realized_pnl=totals["realized"],
        fees=totals["fees"],
        llm_cost=bot.llm_cost_total,
    )
    realtime.publish_equity(snapshot, owner_id=bot.owner_id)
    return snapshot
