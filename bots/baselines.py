"""Rule baselines: decision makers without an LLM (offline demo bots, leaderboard benchmarks).

Each reads the indicators of the shared market snapshot (`ctx.snapshot.data`), so a baseline and
an LLM bot of the same slot look at the same numbers. Sizes stay within the bot's limits (the
risk manager still checks every action).

- `hold`: never trades; the zero line of the leaderboard.
- `buy_and_hold`: opens a long in every symbol it holds no position in, splitting equity evenly
  (capped by the limits), and holds; a position closed by a stop is re-opened next cycle.
- `ema_rsi`: trend following. Opens long when EMA20 has crossed above EMA50 within the snapshot's
  recent series (the last 10 candles: a bot cycling slower than the candles still catches the
  cross) and RSI14 is below 70; opens short on the mirror image (RSI14 above 30), on contract
  markets only. Stop-loss 2 x ATR14 and take-profit 3 x ATR14 from the price. Closes a position
  once EMA20 is on the other side of EMA50 (the opposite cross).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any, ClassVar

from bots.decisions import (
    Action,
    Decision,
    DecisionContext,
    DecisionInvalid,
    DecisionMaker,
    DecisionOutcome,
    PositionView,
    validate_decision,
)
from trading.numbers import plain

logger = logging.getLogger(__name__)

PROVIDER = "baseline"
SIZE_QUANTUM = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a baseline looked at (the prompt) and what it decided (the raw decision)."""

    looked_at: dict[str, Any]
    raw: dict[str, Any]


class Baseline:
    """Shared machinery: the outcome record, validation, sizing within the limits."""

    provider: str = PROVIDER
    model: str = ""
    version: ClassVar[int] = 1
    rules: ClassVar[str] = ""

    @property
    def prompt_version(self) -> str:
        return f"baseline-{self.model}-{self.version}"

    def decide(self, ctx: DecisionContext) -> DecisionOutcome:
        """Never raises for missing or malformed market data: holds and records why."""
        try:
            plan = self.plan(ctx)
            decision = validate_decision(plan.raw, symbols=list(ctx.symbols), prices=_prices(ctx))
        except (DecisionInvalid, LookupError, TypeError, ValueError, ArithmeticError) as exc:
            logger.warning("baseline %s of bot %s holds: %s", self.model, ctx.bot_id, exc)
            reason = f"baseline {self.model} could not decide: {exc}"
            return DecisionOutcome(
                decision=Decision.hold_all(list(ctx.symbols), reason),
                prompt_version=self.prompt_version,
                error=reason,
            )
        return DecisionOutcome(
            decision=decision,
            prompt=json.dumps(plan.looked_at, indent=2, default=str),
            prompt_version=self.prompt_version,
            raw_output=json.dumps(plan.raw, indent=2, default=str),
        )

    def plan(self, ctx: DecisionContext) -> _Plan:
        raise NotImplementedError

    def _looked_at(self, ctx: DecisionContext, symbols: dict[str, Any]) -> dict[str, Any]:
        return {
            "baseline": self.model,
            "rules": self.rules,
            "slot": ctx.slot_iso,
            "market_time": ctx.snapshot.data.get("market_time"),
            "snapshot_hash": ctx.snapshot.hash,
            "account": {
                "equity": ctx.account.equity,
                "cash": ctx.account.cash,
                "trades_today": ctx.account.trades_today,
            },
            "limits": {
                "max_position_pct": ctx.limits.max_position_pct,
                "max_leverage": ctx.limits.max_leverage,
                "max_exposure_pct": ctx.limits.max_exposure_pct,
                "max_trades_per_day": ctx.limits.max_trades_per_day,
            },
            "symbols": symbols,
        }


class _Budget:
    """Room left for opens this cycle: trades per day and total exposure (% of equity)."""

    def __init__(self, ctx: DecisionContext) -> None:
        self.limits = ctx.limits
        self.equity = ctx.account.equity
        self.trades_left = ctx.limits.max_trades_per_day - ctx.account.trades_today
        prices = _prices(ctx)
        used = Decimal(0)
        for position in ctx.positions:
            price = prices.get(position.symbol, position.entry_price)
            used += position.quantity * price * _contract_size(ctx, position.symbol)
        self.exposure_left = ctx.limits.max_exposure_pct - used / self.equity * 100 if self.equity > 0 else Decimal(0)

    def take(self, wanted_pct: Decimal, leverage: Decimal) -> tuple[Decimal, str]:
        """The size to open (margin % of equity), or zero and why not."""
        if self.equity <= 0:
            return Decimal(0), "no equity"
        if self.trades_left <= 0:
            return Decimal(0), "the daily trade limit is reached"
        size = min(wanted_pct, self.limits.max_position_pct, self.exposure_left / leverage)
        size = size.quantize(SIZE_QUANTUM, rounding=ROUND_DOWN)
        if size <= 0:
            return Decimal(0), "no exposure left within max_exposure_pct"
        self.trades_left -= 1
        self.exposure_left -= size * leverage
        return size, ""


class HoldBaseline(Baseline):
    model = "hold"
    rules = "Never trades."

    def plan(self, ctx: DecisionContext) -> _Plan:
        raw = {
            "market_summary": "hold baseline: never trades",
            "actions": [
                {"symbol": s, "action": Action.HOLD.value, "reasoning": "the hold baseline never trades"}
                for s in ctx.symbols
            ],
        }
        return _Plan(self._looked_at(ctx, {s: {"price": _symbol_data(ctx, s).get("price")} for s in ctx.symbols}), raw)


class BuyAndHoldBaseline(Baseline):
    model = "buy_and_hold"
    # Of equity, split over the symbols; the rest pays fees and slippage.
    invested_pct: ClassVar[Decimal] = Decimal(95)
    rules = (
        "Open a long (leverage 1) in every symbol without a position, 95% of equity split evenly "
        "and capped by max_position_pct and max_exposure_pct; then hold. Re-open after a stop."
    )

    def plan(self, ctx: DecisionContext) -> _Plan:
        budget = _Budget(ctx)
        held = _positions(ctx.positions)
        share = self.invested_pct / len(ctx.symbols) if ctx.symbols else Decimal(0)
        actions: list[dict[str, Any]] = []
        looked: dict[str, Any] = {}
        for symbol in ctx.symbols:
            price = _decimal(_symbol_data(ctx, symbol).get("price"))
            position = held.get(symbol)
            looked[symbol] = {"price": price, "position": _position_summary(position)}
            if position is not None:
                actions.append(
                    _hold(symbol, f"holding the {position.side} position opened at {plain(position.entry_price)}")
                )
                continue
            size, why_not = budget.take(share, Decimal(1))
            if not size:
                actions.append(_hold(symbol, f"would buy, but {why_not}"))
                continue
            actions.append(
                {
                    "symbol": symbol,
                    "action": Action.OPEN_LONG.value,
                    "size_pct": size,
                    "leverage": Decimal(1),
                    "confidence": 0.5,
                    "invalidation": "none: buy and hold ignores the market",
                    "reasoning": f"buy and hold: no position in {symbol}, buying {size}% of equity at about {price}",
                }
            )
        opens = sum(1 for a in actions if a["action"] == Action.OPEN_LONG.value)
        summary = f"buy and hold: {opens} open(s), {len(actions) - opens} hold(s)"
        return _Plan(self._looked_at(ctx, looked), {"market_summary": summary, "actions": actions})


class EmaRsiBaseline(Baseline):
    model = "ema_rsi"
    size_pct: ClassVar[Decimal] = Decimal(10)
    rsi_overbought: ClassVar[Decimal] = Decimal(70)
    rsi_oversold: ClassVar[Decimal] = Decimal(30)
    stop_atr: ClassVar[Decimal] = Decimal(2)
    target_atr: ClassVar[Decimal] = Decimal(3)
    rules = (
        "Long when EMA20 crossed above EMA50 within the last 10 candles and RSI14 < 70; short (contract "
        "markets only) when EMA20 crossed below EMA50 within the last 10 candles and RSI14 > 30. "
        "Size 10% of equity at leverage 1 within the limits; stop-loss 2 x ATR14, take-profit 3 x ATR14. "
        "Close when EMA20 is on the other side of EMA50."
    )

    def plan(self, ctx: DecisionContext) -> _Plan:
        budget = _Budget(ctx)
        held = _positions(ctx.positions)
        actions: list[dict[str, Any]] = []
        looked: dict[str, Any] = {}
        for symbol in ctx.symbols:
            data = _symbol_data(ctx, symbol)
            indicators = data.get("indicators") or {}
            series = data.get("series") or {}
            price = _decimal(data.get("price"))
            ema20, ema50 = _decimal(indicators.get("ema20")), _decimal(indicators.get("ema50"))
            rsi14, atr14 = _decimal(indicators.get("rsi14")), _decimal(indicators.get("atr14"))
            cross = last_cross(series.get("ema20") or [], series.get("ema50") or [])
            position = held.get(symbol)
            contract = bool(ctx.snapshot.markets[symbol].info.contract)
            looked[symbol] = {
                "price": price,
                "ema20": ema20,
                "ema50": ema50,
                "rsi14": rsi14,
                "atr14": atr14,
                "recent_cross": cross,
                "contract": contract,
                "position": _position_summary(position),
            }
            actions.append(
                self._action(ctx, budget, symbol, price, ema20, ema50, rsi14, atr14, cross, position, contract)
            )
        summary = "; ".join(f"{a['symbol']}: {a['action']}" for a in actions)
        return _Plan(self._looked_at(ctx, looked), {"market_summary": f"ema_rsi: {summary}", "actions": actions})

    def _action(
        self,
        ctx: DecisionContext,
        budget: _Budget,
        symbol: str,
        price: Decimal | None,
        ema20: Decimal | None,
        ema50: Decimal | None,
        rsi14: Decimal | None,
        atr14: Decimal | None,
        cross: str | None,
        position: PositionView | None,
        contract: bool,
    ) -> dict[str, Any]:
        if price is None or ema20 is None or ema50 is None or rsi14 is None or atr14 is None:
            return _hold(symbol, "not enough history for EMA50, RSI14 and ATR14 yet")
        trend = f"EMA20 {ema20} vs EMA50 {ema50}, RSI14 {rsi14}"
        if position is not None:
            if position.side == "long" and ema20 < ema50:
                return _close(symbol, f"EMA20 crossed below EMA50 ({trend}): the uptrend is over")
            if position.side == "short" and ema20 > ema50:
                return _close(symbol, f"EMA20 crossed above EMA50 ({trend}): the downtrend is over")
            return _hold(symbol, f"keeping the {position.side} position: {trend}")
        if atr14 <= 0:
            return _hold(symbol, "ATR14 is zero: no volatility to place stops by")
        info = ctx.snapshot.markets[symbol].info
        if cross == "up" and ema20 > ema50:
            if rsi14 >= self.rsi_overbought:
                return _hold(symbol, f"EMA20 crossed above EMA50 but RSI14 {rsi14} is overbought")
            stop = info.round_price(price - self.stop_atr * atr14)
            target = info.round_price(price + self.target_atr * atr14)
            if stop <= 0 or stop >= price:
                return _hold(symbol, f"no valid stop below {price} from ATR14 {atr14}")
            return self._open(budget, symbol, Action.OPEN_LONG, price, stop, target, trend, "EMA20 back below EMA50")
        if cross == "down" and ema20 < ema50:
            if not contract:
                return _hold(symbol, f"EMA20 crossed below EMA50 but {symbol} is spot: no shorts")
            if rsi14 <= self.rsi_oversold:
                return _hold(symbol, f"EMA20 crossed below EMA50 but RSI14 {rsi14} is oversold")
            stop = info.round_price(price + self.stop_atr * atr14)
            target = info.round_price(price - self.target_atr * atr14)
            if target <= 0 or stop <= price:
                return _hold(symbol, f"no valid take-profit below {price} from ATR14 {atr14}")
            return self._open(budget, symbol, Action.OPEN_SHORT, price, stop, target, trend, "EMA20 back above EMA50")
        return _hold(symbol, f"no fresh EMA20/EMA50 cross: {trend}")

    def _open(
        self,
        budget: _Budget,
        symbol: str,
        action: Action,
        price: Decimal,
        stop: Decimal,
        target: Decimal,
        trend: str,
        invalidation: str,
    ) -> dict[str, Any]:
        size, why_not = budget.take(self.size_pct, Decimal(1))
        if not size:
            return _hold(symbol, f"signal {action.value} ({trend}), but {why_not}")
        return {
            "symbol": symbol,
            "action": action.value,
            "size_pct": size,
            "leverage": Decimal(1),
            "stop_loss": stop,
            "take_profit": target,
            "confidence": 0.6,
            "invalidation": invalidation,
            "reasoning": f"fresh EMA20/EMA50 cross ({trend}); entry about {price}, stop {stop}, target {target}",
        }


BASELINES: dict[str, type[Baseline]] = {cls.model: cls for cls in (HoldBaseline, BuyAndHoldBaseline, EmaRsiBaseline)}


def get_baseline(model: str) -> DecisionMaker:
    """A baseline by name; ValueError naming the choices for an unknown one."""
    cls = BASELINES.get(model)
    if cls is None:
        raise ValueError(f"unknown baseline {model!r}; choose one of {', '.join(sorted(BASELINES))}")
    return cls()


def last_cross(fast: Sequence[object], slow: Sequence[object]) -> str | None:
    """ "up" or "down" for the most recent crossing of `fast` over `slow` in the series, else None."""
    spreads = [_spread(f, s) for f, s in zip(fast, slow, strict=False)]
    for before, now in reversed(list(zip(spreads, spreads[1:], strict=False))):
        if before is None or now is None:
            continue  # not enough history at that point
        if before <= 0 < now:
            return "up"
        if before >= 0 > now:
            return "down"
    return None


def _spread(fast: object, slow: object) -> Decimal | None:
    f, s = _decimal(fast), _decimal(slow)
    return None if f is None or s is None else f - s


def _symbol_data(ctx: DecisionContext, symbol: str) -> Mapping[str, Any]:
    data: Mapping[str, Any] = ctx.snapshot.data["symbols"][symbol]
    return data


def _prices(ctx: DecisionContext) -> dict[str, Decimal]:
    prices: dict[str, Decimal] = {}
    for symbol, data in (ctx.snapshot.data.get("symbols") or {}).items():
        price = _decimal(data.get("price"))
        if price is not None:
            prices[symbol] = price
    return prices


def _contract_size(ctx: DecisionContext, symbol: str) -> Decimal:
    market = ctx.snapshot.markets.get(symbol)
    return Decimal(market.info.contract_size) if market is not None else Decimal(1)


def _decimal(value: object) -> Decimal | None:
    if value is None:
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _positions(positions: Sequence[PositionView]) -> dict[str, PositionView]:
    return {p.symbol: p for p in positions}


def _position_summary(position: PositionView | None) -> dict[str, Any] | None:
    if position is None:
        return None
    return {
        "side": position.side,
        "quantity": position.quantity,
        "entry_price": position.entry_price,
        "stop_loss": position.stop_loss,
        "take_profit": position.take_profit,
        "unrealized_pnl": position.unrealized_pnl,
    }


def _hold(symbol: str, reasoning: str) -> dict[str, Any]:
    return {"symbol": symbol, "action": Action.HOLD.value, "reasoning": reasoning}


def _close(symbol: str, reasoning: str) -> dict[str, Any]:
    return {"symbol": symbol, "action": Action.CLOSE.value, "confidence": 0.6, "reasoning": reasoning}
