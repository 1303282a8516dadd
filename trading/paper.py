"""Paper-trading maths: fill prices, fees, margin, PnL, liquidation and stop/target triggers.

Pure functions of plain values (no ORM, no settings), so the executors and books only move rows and
every number here is tested by hand-computed examples.

Model (what a user should know about paper results):

* Market orders fill at the reference price moved against the trader by `slippage_bps`, then
  rounded to the price tick, again against the trader (a buy rounds up, a sell down).
* Fees are `fee_bps` of the notional, on the way in and on the way out.
* Margin is isolated: a position locks `notional / leverage` and can lose at most that margin.
  Liquidation happens where the remaining margin equals the maintenance margin
  (`maintenance_margin_rate` x notional at that price); the margin is then lost in full.
* Stops and targets trigger on candle highs/lows. Inside one candle the order in which prices
  were reached is unknown, so the adverse level is assumed first (see `exit_trigger`).

Quantities are in base units (for contracts: contracts x contract size). Money results are
rounded to 12 decimal places, the precision of the database columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

from marketdata.types import CandleData, MarketInfo

ZERO = Decimal(0)
ONE = Decimal(1)
BPS = Decimal(10000)
MONEY_STEP = Decimal("1e-12")
DEFAULT_MAINTENANCE_MARGIN_RATE = Decimal("0.005")

LONG, SHORT = "long", "short"
BUY, SELL = "buy", "sell"


def money(value: Decimal) -> Decimal:
    """Round to the database's money precision (12 decimal places)."""
    return value.quantize(MONEY_STEP, rounding=ROUND_HALF_EVEN)


def fill_price(*, side: str, reference: Decimal, slippage_bps: Decimal, info: MarketInfo) -> Decimal:
    """The price a market order fills at: a buy pays up, a sell gets less, rounded to the tick
    in the same adverse direction. `side` is the order side ("buy" / "sell")."""
    _check_order_side(side)
    if reference <= 0:
        raise ValueError(f"reference price must be positive, got {reference}")
    if slippage_bps < 0:
        raise ValueError(f"slippage_bps must not be negative, got {slippage_bps}")
    slip = slippage_bps / BPS
    if side == BUY:
        return _to_tick(reference * (ONE + slip), info.price_step, ROUND_CEILING)
    price = _to_tick(reference * (ONE - slip), info.price_step, ROUND_FLOOR)
    # An absurd slippage would price a sell at zero or below; one tick is the least a fill gets.
    return price if price > 0 else info.price_step


def fee(*, notional: Decimal, fee_bps: Decimal) -> Decimal:
    """The trading fee on a notional (always positive), rounded to 12 decimal places."""
    if fee_bps < 0:
        raise ValueError(f"fee_bps must not be negative, got {fee_bps}")
    return money(abs(notional) * fee_bps / BPS)


def liquidation_price(
    *,
    side: str,
    entry: Decimal,
    leverage: Decimal,
    maintenance_margin_rate: Decimal = DEFAULT_MAINTENANCE_MARGIN_RATE,
) -> Decimal | None:
    """The price at which an isolated-margin position is liquidated, or None if it cannot be.

    With margin = entry x q / L, the position is liquidated when margin + PnL falls to the
    maintenance margin mmr x price x q:

    * long:  p = entry x (1 - 1/L) / (1 - mmr)  (None for L <= 1: a fully paid long cannot be)
    * short: p = entry x (1 + 1/L) / (1 + mmr)
    """
    _check_position_side(side)
    if entry <= 0:
        raise ValueError(f"entry price must be positive, got {entry}")
    if leverage <= 0:
        raise ValueError(f"leverage must be positive, got {leverage}")
    if not ZERO <= maintenance_margin_rate < ONE:
        raise ValueError(f"maintenance_margin_rate must be in [0, 1), got {maintenance_margin_rate}")
    if side == LONG:
        if leverage <= ONE:
            return None
        return money(entry * (ONE - ONE / leverage) / (ONE - maintenance_margin_rate))
    return money(entry * (ONE + ONE / leverage) / (ONE + maintenance_margin_rate))


def unrealized_pnl(*, side: str, quantity: Decimal, entry: Decimal, price: Decimal) -> Decimal:
    """Gross PnL of a position marked at `price` (before fees, not capped at the margin)."""
    _check_position_side(side)
    move = price - entry if side == LONG else entry - price
    return money(move * quantity)


def position_value(*, side: str, quantity: Decimal, entry: Decimal, price: Decimal, margin: Decimal) -> Decimal:
    """What an isolated-margin position adds to equity: margin + PnL, never below zero."""
    return max(margin + unrealized_pnl(side=side, quantity=quantity, entry=entry, price=price), ZERO)


def exit_trigger(
    *,
    side: str,
    stop_loss: Decimal | None,
    take_profit: Decimal | None,
    liquidation: Decimal | None,
    candle: CandleData,
) -> tuple[str, Decimal] | None:
    """Which exit a candle triggers, with the reference price it exits at, or None.

    Returns ("liquidation" | "stop_loss" | "take_profit", price). Rules, for a long (a short is
    the mirror image):

    * A candle that opens beyond a level gapped through it: the open is the first price traded,
      so the exit happens at the open, which is worse than the level. A gap through the
      liquidation level is a liquidation even when the stop was gapped too (the exchange's
      liquidation engine takes the position before a stop order could fill).
    * A candle that opens beyond the take-profit fills it at the take-profit level, not at the
      better open: a resting target is a limit order, and paper results should not be flattered.
    * Otherwise, if the low reaches the stop (or the liquidation level), that exit happens at the
      level. Liquidation comes first only when its level is nearer than the stop (a stop set
      beyond the liquidation price).
    * If both the stop and the target lie inside one candle, the stop is assumed to have been hit
      first. The path inside a candle is unknown; assuming the worse outcome keeps paper results
      honest.
    """
    _check_position_side(side)
    long = side == LONG

    def adverse_hit(level: Decimal | None, price: Decimal) -> bool:
        return level is not None and (price <= level if long else price >= level)

    def target_hit(target: Decimal, price: Decimal) -> bool:
        return price >= target if long else price <= target

    # 1. Gaps at the open.
    if adverse_hit(liquidation, candle.open):
        return "liquidation", candle.open
    if adverse_hit(stop_loss, candle.open):
        return "stop_loss", candle.open
    if take_profit is not None and target_hit(take_profit, candle.open):
        return "take_profit", take_profit

    # 2. Inside the candle: adverse first (conservative), in the order a falling (long) / rising
    # (short) price meets the levels: the nearer of stop and liquidation first.
    adverse = [(n, lv) for n, lv in (("stop_loss", stop_loss), ("liquidation", liquidation)) if lv is not None]
    adverse.sort(key=lambda item: item[1], reverse=long)
    extreme = candle.low if long else candle.high
    for name, level in adverse:
        if adverse_hit(level, extreme):
            return name, level
    best = candle.high if long else candle.low
    if take_profit is not None and target_hit(take_profit, best):
        return "take_profit", take_profit
    return None


@dataclass(frozen=True, slots=True)
class OpenCosts:
    """What opening a position costs the account."""

    notional: Decimal
    margin: Decimal  # locked out of free cash while the position is open
    fee: Decimal
    cash_required: Decimal  # margin + fee
    liquidation_price: Decimal | None


def open_position_costs(
    *,
    side: str,
    quantity: Decimal,
    price: Decimal,
    leverage: Decimal,
    fee_bps: Decimal,
    maintenance_margin_rate: Decimal = DEFAULT_MAINTENANCE_MARGIN_RATE,
) -> OpenCosts:
    """Notional, margin, fee and liquidation price of opening `quantity` at the fill `price`."""
    _check_position_side(side)
    if quantity <= 0:
        raise ValueError(f"quantity must be positive, got {quantity}")
    if leverage <= 0:
        raise ValueError(f"leverage must be positive, got {leverage}")
    notional = money(quantity * price)
    margin = money(notional / leverage)
    paid = fee(notional=notional, fee_bps=fee_bps)
    return OpenCosts(
        notional=notional,
        margin=margin,
        fee=paid,
        cash_required=margin + paid,
        liquidation_price=liquidation_price(
            side=side, entry=price, leverage=leverage, maintenance_margin_rate=maintenance_margin_rate
        ),
    )


@dataclass(frozen=True, slots=True)
class CloseResult:
    """The outcome of closing a position.

    Invariant: cash_returned = margin + realized_pnl - fee, and cash_returned >= 0.
    """

    exit_price: Decimal
    notional: Decimal
    realized_pnl: Decimal  # gross of fees; never below -margin (isolated margin)
    fee: Decimal
    cash_returned: Decimal  # back into free cash: margin + realized_pnl - fee


def close_position_result(
    *,
    side: str,
    quantity: Decimal,
    entry: Decimal,
    exit_price: Decimal,
    margin: Decimal,
    fee_bps: Decimal,
    liquidation: bool = False,
) -> CloseResult:
    """Realized PnL, exit fee and the cash a close gives back (isolated margin).

    A close can give back no less than nothing: when a gap makes the loss exceed the margin, the
    loss is capped at the margin and the fee at what is left. A liquidation loses the whole
    margin: the maintenance margin left at the liquidation price goes to the exchange as the
    liquidation fee, so cash_returned is zero.
    """
    _check_position_side(side)
    notional = money(quantity * exit_price)
    pnl = unrealized_pnl(side=side, quantity=quantity, entry=entry, price=exit_price)
    paid = fee(notional=notional, fee_bps=fee_bps)
    if margin + pnl < 0:
        # Past the bankruptcy price: isolated margin caps the loss; nothing is left for a fee.
        pnl, paid = -margin, ZERO
    elif liquidation or margin + pnl - paid < 0:
        # What is left after the loss goes to the exchange (liquidation fee / the rest of the fee).
        paid = margin + pnl
    return CloseResult(
        exit_price=exit_price,
        notional=notional,
        realized_pnl=pnl,
        fee=paid,
        cash_returned=margin + pnl - paid,
    )


def _to_tick(price: Decimal, step: Decimal, rounding: str) -> Decimal:
    if step <= 0:
        raise ValueError(f"price step must be positive, got {step}")
    steps = (price / step).to_integral_value(rounding=rounding)
    return (steps * step).quantize(step)


def _check_order_side(side: str) -> None:
    if side not in (BUY, SELL):
        raise ValueError(f"order side must be 'buy' or 'sell', got {side!r}")


def _check_position_side(side: str) -> None:
    if side not in (LONG, SHORT):
        raise ValueError(f"position side must be 'long' or 'short', got {side!r}")
