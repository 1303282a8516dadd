"""The risk manager: a pure function between a decision and the orders it may cause.

`evaluate` checks every proposed action against the bot's limits, its account and its open
positions, and answers per action: approved, clamped (approved, but smaller than asked), rejected,
or hold, each with human-readable reasons. The decision maker cannot override it: only the
`OrderIntent`s it returns are ever executed.

Rules, in the order they are checked:

* One action per symbol: a second action for a symbol in the same decision is rejected.
* `hold` does nothing.
* `close` is approved whenever a position is open on the symbol, whatever the breakers, limits or
  the bot's symbol list say: exits are never blocked. It only needs a usable price.
* Breakers (drawdown from the peak, loss since the start of the UTC day) reject every open.
* An open is rejected when a position is already open on the symbol (no adding, no flipping in
  one step), when the daily trade count is used up, when it would short a spot market, or when
  its stop-loss/take-profit is on the wrong side of the price.
* An open is clamped, with the reason recorded, to: `max_leverage` (and 1x on spot), margin at
  most `max_position_pct` of equity, margin + estimated fee within free cash, and notional within
  what `max_exposure_pct` of equity leaves after the open positions (marked at the current price)
  and the opens approved earlier in the same decision. What is left after rounding the quantity
  down to the market's step must still meet the market's minimum amount and notional.

Conservative by design: cash and exposure freed by a `close` in the same decision are not counted
for the opens of that decision (the close has not filled yet). The fee reserve uses `fee_bps`;
callers that simulate slippage should pass fee + slippage so a fill at a worse price still fits.

Pure: no ORM, no I/O, no settings. It never raises for bad numbers (zero or negative equity, a zero
price, NaN, huge values): such an action is rejected with a reason instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import ROUND_DOWN, Context, Decimal, DivisionByZero, InvalidOperation, Overflow, localcontext

from marketdata.types import MarketInfo
from trading.numbers import plain
from trading.risk_types import (
    AccountState,
    ActionOutcome,
    OpenPosition,
    OrderIntent,
    ProposedAction,
    RiskInput,
    RiskLimits,
    RiskResult,
)

logger = logging.getLogger(__name__)

ZERO = Decimal(0)
ONE = Decimal(1)
HUNDRED = Decimal(100)
BPS = Decimal(10000)
# Money is kept to the database's precision (DecimalField decimal_places=12).
MONEY_STEP = Decimal("1e-12")

OPEN_ACTIONS = ("open_long", "open_short")

# Enough digits that quantities of 1e20 with 12 decimals survive `quantize`; the traps turn
# nonsense (NaN arithmetic, x/0, overflow) into exceptions that reject the action.
# Rounding toward zero makes every derived cap (cash / (1 + fee), room / leverage) err on the
# small side, so an approved order never exceeds a limit by a last-digit rounding.
_CONTEXT = Context(prec=60, rounding=ROUND_DOWN, traps=[InvalidOperation, DivisionByZero, Overflow])


class _Rejected(Exception):
    """An action fails a rule; the message is the reason shown to the user."""


@dataclass(slots=True)
class _Budget:
    """What the opens of this decision may still use, shrinking as opens are approved."""

    cash: Decimal  # free cash left for margin + fees
    exposure: Decimal  # notional of open positions + approved opens
    opens: int = 0  # opens approved so far in this decision


def evaluate(inp: RiskInput) -> RiskResult:
    """Approve, clamp or reject every proposed action; never raises."""
    with localcontext(_CONTEXT):
        return _evaluate(inp)


def _evaluate(inp: RiskInput) -> RiskResult:
    breaker, breaker_reason = check_breakers(inp.account, inp.limits)
    positions = {p.symbol: p for p in inp.positions}
    # Why opens cannot be evaluated at all (account/limits/positions unusable), if they cannot.
    open_blocker = _account_problem(inp.account, inp.limits)
    budget = _Budget(cash=ZERO, exposure=ZERO)
    if open_blocker is None:
        try:
            budget = _Budget(cash=inp.account.cash, exposure=_open_exposure(inp))
        except (ArithmeticError, TypeError, ValueError) as exc:
            open_blocker = f"the open positions could not be valued ({type(exc).__name__})"

    outcomes: list[ActionOutcome] = []
    seen: set[str] = set()
    for action in inp.actions:
        symbol, verb = str(action.symbol), str(action.action)
        if symbol in seen:
            outcomes.append(_rejected(action, f"a second action for {symbol} in one decision (only the first counts)"))
            continue
        seen.add(symbol)
        try:
            if verb == "hold":
                outcomes.append(ActionOutcome(symbol=symbol, action=verb, verdict="hold", reasons=["hold: no order"]))
            elif verb == "close":
                outcomes.append(_evaluate_close(action, inp, positions))
            elif verb in OPEN_ACTIONS:
                if breaker is not None:
                    raise _Rejected(f"{breaker_reason}: no new positions")
                if open_blocker is not None:
                    raise _Rejected(open_blocker)
                outcomes.append(_evaluate_open(action, inp, positions, budget))
            else:
                raise _Rejected(f"unknown action {verb!r} (expected open_long, open_short, close or hold)")
        except _Rejected as exc:
            outcomes.append(_rejected(action, str(exc)))
        except (ArithmeticError, TypeError, ValueError) as exc:
            # Numbers the checks above did not foresee (e.g. a price with 100 digits): refuse the
            # action rather than fail the whole cycle.
            logger.warning("risk: %s %s could not be evaluated: %r", verb, symbol, exc)
            outcomes.append(_rejected(action, f"could not be evaluated with these numbers ({type(exc).__name__})"))
    return RiskResult(outcomes=outcomes, breaker=breaker, breaker_reason=breaker_reason)


# --- Breakers ------------------------------------------------------------------------------------


def check_breakers(account: AccountState, limits: RiskLimits) -> tuple[str | None, str]:
    """("drawdown" | "daily_loss" | None, reason). Unusable numbers trip nothing here; they block
    opens through `_account_problem` instead, so a bad value never pauses a bot by itself."""
    try:
        equity = account.equity
        if not _finite(equity, account.peak_equity, limits.max_drawdown_pct):
            raise InvalidOperation
        # A stale peak below the current equity is no peak: the drawdown is then zero.
        peak = max(account.peak_equity, equity)
        if peak > 0:
            drawdown = (peak - equity) / peak * HUNDRED
            if drawdown >= limits.max_drawdown_pct:
                return "drawdown", (
                    f"drawdown breaker: equity {plain(equity)} is {_pct(drawdown)}% below its peak "
                    f"{plain(peak)} (limit {_pct(limits.max_drawdown_pct)}%)"
                )
    except (ArithmeticError, TypeError, ValueError):
        pass
    try:
        equity, start = account.equity, account.day_start_equity
        if not _finite(equity, start, limits.daily_loss_limit_pct):
            raise InvalidOperation
        if start > 0:
            loss = (start - equity) / start * HUNDRED
            if loss >= limits.daily_loss_limit_pct:
                return "daily_loss", (
                    f"daily loss breaker: equity {plain(equity)} is {_pct(loss)}% below the day's start "
                    f"{plain(start)} (limit {_pct(limits.daily_loss_limit_pct)}%)"
                )
    except (ArithmeticError, TypeError, ValueError):
        pass
    return None, ""


def _account_problem(account: AccountState, limits: RiskLimits) -> str | None:
    # A breaker limit or mark that is not a number cannot be checked: fail safe, no opens.
    numbers = {
        "equity": account.equity,
        "cash": account.cash,
        "peak_equity": account.peak_equity,
        "day_start_equity": account.day_start_equity,
        "max_position_pct": limits.max_position_pct,
        "max_leverage": limits.max_leverage,
        "max_exposure_pct": limits.max_exposure_pct,
        "max_drawdown_pct": limits.max_drawdown_pct,
        "daily_loss_limit_pct": limits.daily_loss_limit_pct,
    }
    for name, value in numbers.items():
        if not _finite(value):
            return f"{name} is not a usable number ({value!r})"
    if not isinstance(account.trades_today, int) or not isinstance(limits.max_trades_per_day, int):
        return "the trade counts are not integers"
    if account.equity <= 0:
        return f"equity {plain(account.equity)} is not positive: no new positions"
    if limits.max_leverage < 1:
        return f"max_leverage {plain(limits.max_leverage)} is below 1: no position can be opened"
    return None


def _open_exposure(inp: RiskInput) -> Decimal:
    """Notional of the open positions, marked at the current price (entry price when unknown)."""
    total = ZERO
    for position in inp.positions:
        price = inp.prices.get(position.symbol)
        if price is None or not _finite(price) or price <= 0:
            price = position.entry_price
        info = inp.markets.get(position.symbol)
        size = _contract_size(info) if info is not None else ONE
        if not _finite(position.quantity, price, size):
            raise InvalidOperation
        total += abs(position.quantity * size * price)
    return total


# --- Close ---------------------------------------------------------------------------------------


def _evaluate_close(action: ProposedAction, inp: RiskInput, positions: dict[str, OpenPosition]) -> ActionOutcome:
    symbol = action.symbol
    position = positions.get(symbol)
    if position is None:
        raise _Rejected(f"no open position on {symbol} to close")
    if not _finite(position.quantity) or position.quantity <= 0:
        raise _Rejected(f"the open position on {symbol} has no usable quantity ({position.quantity!r})")
    price = inp.prices.get(symbol)
    if price is None or not _finite(price) or price <= 0:
        raise _Rejected(f"no usable price for {symbol} ({price!r}): cannot close now")
    reasons = [
        f"close {position.side} {plain(position.quantity)} {symbol} at ~{plain(price)} "
        "(exits are never blocked by limits or breakers)"
    ]
    if symbol not in inp.allowed_symbols:
        reasons.append(f"{symbol} is no longer among the bot's symbols; closing is still allowed")
    order = OrderIntent(
        symbol=symbol,
        intent="close",
        side=position.side,
        quantity=position.quantity,
        leverage=position.leverage,
        margin=position.margin,
        reference_price=price,
    )
    return ActionOutcome(symbol=symbol, action=action.action, verdict="approved", reasons=reasons, order=order)


# --- Open ----------------------------------------------------------------------------------------


def _evaluate_open(
    action: ProposedAction, inp: RiskInput, positions: dict[str, OpenPosition], budget: _Budget
) -> ActionOutcome:
    """An open, checked then sized: leverage, stop and target, margin, quantity (each clamp recorded)."""
    symbol = action.symbol
    long = action.action == "open_long"
    side = "long" if long else "short"
    info, price = _open_market(action, inp, positions, budget)
    clamps: list[str] = []
    notes: list[str] = []
    leverage = _open_leverage(action, info, inp.limits, clamps)
    # Stop-loss and take-profit: on the correct side of the price, after rounding to the tick.
    stop_loss = _protective_level(action.stop_loss, "stop_loss", price=price, info=info, below=long)
    take_profit = _protective_level(action.take_profit, "take_profit", price=price, info=info, below=not long)
    if stop_loss is None:
        notes.append("no stop-loss: the position has no automatic exit on a loss")
    fee_rate = max(inp.fee_bps, ZERO) / BPS if _finite(inp.fee_bps) else ZERO
    margin = _open_margin(action, inp, budget, leverage=leverage, fee_rate=fee_rate, clamps=clamps)
    quantity, notional, margin = _open_size(symbol, info, price=price, margin=margin, leverage=leverage, clamps=clamps)

    budget.cash -= margin + notional * fee_rate
    budget.exposure += notional
    budget.opens += 1
    summary = (
        f"open {side} {plain(quantity)} {symbol} at ~{plain(price)}: notional {plain(notional)}, "
        f"margin {plain(margin)}, {plain(leverage)}x"
    )
    if stop_loss is not None:
        summary += f", stop-loss {plain(stop_loss)}"
    if take_profit is not None:
        summary += f", take-profit {plain(take_profit)}"
    order = OrderIntent(
        symbol=symbol,
        intent="open",
        side=side,
        quantity=quantity,
        leverage=leverage,
        margin=margin,
        reference_price=price,
        stop_loss=stop_loss,
        take_profit=take_profit,
    )
    return ActionOutcome(
        symbol=symbol,
        action=action.action,
        verdict="clamped" if clamps else "approved",
        reasons=[*clamps, *notes, summary],
        order=order,
    )


def _open_market(
    action: ProposedAction, inp: RiskInput, positions: dict[str, OpenPosition], budget: _Budget
) -> tuple[MarketInfo, Decimal]:
    """The market and price of an open that may be opened at all (else rejected with the reason)."""
    symbol, limits, account = action.symbol, inp.limits, inp.account
    if symbol not in inp.allowed_symbols:
        raise _Rejected(f"{symbol} is not traded by this bot (allowed: {', '.join(inp.allowed_symbols) or 'none'})")
    info = inp.markets.get(symbol)
    if info is None:
        raise _Rejected(f"no market information for {symbol}")
    price = inp.prices.get(symbol)
    if price is None or not _finite(price) or price <= 0:
        raise _Rejected(f"no usable price for {symbol} ({price!r})")
    _check_market(info)
    if symbol in positions:
        held = positions[symbol]
        raise _Rejected(
            f"a {held.side} position of {plain(held.quantity)} {symbol} is already open: close it first "
            "(no adding to or flipping a position in one step)"
        )
    if account.trades_today + budget.opens >= limits.max_trades_per_day:
        raise _Rejected(
            f"daily trade limit reached ({account.trades_today + budget.opens} of {limits.max_trades_per_day} opens today)"
        )
    if action.action != "open_long" and not info.contract:
        raise _Rejected(f"{symbol} is a spot market: shorting needs a contract (perpetual/futures) market")
    return info, price


def _open_leverage(action: ProposedAction, info: MarketInfo, limits: RiskLimits, clamps: list[str]) -> Decimal:
    leverage = action.leverage
    if not _finite(leverage) or leverage <= 0:
        raise _Rejected(f"leverage {leverage!r} is not a positive number")
    if not info.contract and leverage != ONE:
        clamps.append(f"leverage {plain(leverage)}x set to 1x: spot markets trade without leverage")
        leverage = ONE
    if leverage > limits.max_leverage:
        clamps.append(f"leverage clamped from {plain(leverage)}x to the limit {plain(limits.max_leverage)}x")
        leverage = limits.max_leverage
    if leverage < ONE:
        clamps.append(f"leverage {plain(leverage)}x raised to 1x (margin above the notional makes no sense)")
        leverage = ONE
    return leverage


def _open_margin(
    action: ProposedAction,
    inp: RiskInput,
    budget: _Budget,
    *,
    leverage: Decimal,
    fee_rate: Decimal,
    clamps: list[str],
) -> Decimal:
    """The margin asked for, clamped to the position limit, the free cash and the exposure limit."""
    limits = inp.limits
    size_pct = action.size_pct
    if not _finite(size_pct) or size_pct <= 0:
        raise _Rejected(f"size_pct {size_pct!r} must be above 0 to open a position")
    equity = inp.account.equity
    margin = size_pct / HUNDRED * equity
    position_cap = limits.max_position_pct / HUNDRED * equity
    if position_cap <= 0:
        raise _Rejected(f"max_position_pct {plain(limits.max_position_pct)}% leaves no room for a position")
    if margin > position_cap:
        clamps.append(
            f"margin clamped from {plain(margin)} ({_pct(size_pct)}% of equity) to {plain(position_cap)} "
            f"(max_position_pct {_pct(limits.max_position_pct)}%)"
        )
        margin = position_cap

    # Free cash must cover the margin and the estimated fee on the notional.
    if budget.cash <= 0:
        raise _Rejected(f"no free cash left (free cash {plain(budget.cash)})")
    cash_cap = budget.cash / (ONE + leverage * fee_rate)
    if margin > cash_cap:
        clamps.append(
            f"margin clamped from {plain(margin)} to {plain(cash_cap)}: free cash {plain(budget.cash)} minus the fee"
        )
        margin = cash_cap

    # Total exposure: open positions + opens approved in this decision + this one.
    exposure_cap = limits.max_exposure_pct / HUNDRED * equity
    room = exposure_cap - budget.exposure
    if room <= 0:
        raise _Rejected(
            f"exposure limit reached: open notional {plain(budget.exposure)} of at most {plain(exposure_cap)} "
            f"(max_exposure_pct {_pct(limits.max_exposure_pct)}%)"
        )
    if margin * leverage > room:
        clamps.append(
            f"notional clamped from {plain(margin * leverage)} to {plain(room)} so total exposure stays within "
            f"{plain(exposure_cap)} (max_exposure_pct {_pct(limits.max_exposure_pct)}%)"
        )
        margin = room / leverage
    return margin


def _open_size(
    symbol: str, info: MarketInfo, *, price: Decimal, margin: Decimal, leverage: Decimal, clamps: list[str]
) -> tuple[Decimal, Decimal, Decimal]:
    """(quantity, notional, margin): the quantity rounded down to the step (in contracts for contract
    markets), within the market's minimums, and the margin it really locks."""
    size = _contract_size(info)
    quantity = info.round_amount(margin * leverage / (price * size))
    if quantity <= 0:
        raise _Rejected(
            f"the position rounds to zero at {symbol}'s amount step {plain(info.amount_step)} "
            f"(margin {plain(margin)}, {plain(leverage)}x){_because(clamps)}"
        )
    if quantity < info.min_amount:
        raise _Rejected(
            f"quantity {plain(quantity)} is below {symbol}'s minimum {plain(info.min_amount)}{_because(clamps)}"
        )
    notional = quantity * size * price
    if notional < info.min_notional:
        raise _Rejected(
            f"notional {plain(notional)} is below {symbol}'s minimum {plain(info.min_notional)}{_because(clamps)}"
        )
    # Rounded down: never more than the clamps above allowed.
    margin = (notional / leverage).quantize(MONEY_STEP, rounding=ROUND_DOWN)
    if margin <= 0:
        raise _Rejected(f"the position is too small to hold a margin (notional {plain(notional)})")
    return quantity, notional, margin


def _check_market(info: MarketInfo) -> None:
    if not _finite(info.amount_step, info.price_step, info.min_amount, info.min_notional, _contract_size(info)):
        raise _Rejected(f"market information for {info.symbol} holds unusable numbers")
    if info.amount_step <= 0 or info.price_step <= 0 or _contract_size(info) <= 0:
        raise _Rejected(f"market information for {info.symbol} has a zero or negative step or contract size")


def _protective_level(
    level: Decimal | None, name: str, *, price: Decimal, info: MarketInfo, below: bool
) -> Decimal | None:
    """The level rounded to the tick, or a rejection when it is on the wrong side of the price."""
    if level is None:
        return None
    where = "below" if below else "above"
    if not _finite(level) or level <= 0:
        raise _Rejected(f"{name} {level!r} is not a positive price")
    if (level >= price) if below else (level <= price):
        raise _Rejected(f"{name} {plain(level)} must be {where} the price {plain(price)}")
    rounded = info.round_price(level)
    if rounded <= 0 or ((rounded >= price) if below else (rounded <= price)):
        raise _Rejected(
            f"{name} {plain(level)} rounds to {plain(rounded)} at the tick {plain(info.price_step)}, "
            f"which is not {where} the price {plain(price)}"
        )
    return rounded


# --- Helpers -------------------------------------------------------------------------------------


def _rejected(action: ProposedAction, reason: str) -> ActionOutcome:
    return ActionOutcome(symbol=str(action.symbol), action=str(action.action), verdict="rejected", reasons=[reason])


def _contract_size(info: MarketInfo) -> Decimal:
    # Older MarketInfo values have no contract size: one base unit per contract (spot, most perps).
    size = getattr(info, "contract_size", ONE)
    return size if isinstance(size, Decimal) else Decimal(str(size))


def _finite(*values: object) -> bool:
    return all(isinstance(v, Decimal) and v.is_finite() for v in values)


def _because(clamps: list[str]) -> str:
    return f" after: {'; '.join(clamps)}" if clamps else ""


def _pct(value: Decimal) -> str:
    try:
        return plain(value.quantize(Decimal("0.01")))
    except (ArithmeticError, ValueError):
        return plain(value)
