"""Plain value types the risk manager (trading.risk) takes and returns. No ORM, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from marketdata.types import MarketInfo


@dataclass(frozen=True, slots=True)
class RiskLimits:
    max_position_pct: Decimal  # margin of one position, % of equity
    max_leverage: Decimal
    max_exposure_pct: Decimal  # total notional of open positions, % of equity
    max_trades_per_day: int
    daily_loss_limit_pct: Decimal
    max_drawdown_pct: Decimal


@dataclass(frozen=True, slots=True)
class AccountState:
    equity: Decimal
    cash: Decimal  # free cash (not locked as margin)
    peak_equity: Decimal
    day_start_equity: Decimal
    trades_today: int  # opening orders placed since 00:00 UTC


@dataclass(frozen=True, slots=True)
class OpenPosition:
    symbol: str
    side: str  # "long" / "short"
    quantity: Decimal
    entry_price: Decimal
    leverage: Decimal
    margin: Decimal


@dataclass(frozen=True, slots=True)
class ProposedAction:
    """One action of a decision, as the risk manager sees it."""

    symbol: str
    action: str  # open_long / open_short / close / hold
    size_pct: Decimal = Decimal(0)
    leverage: Decimal = Decimal(1)
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """An order the risk manager approved, sized and rounded to the market's precision."""

    symbol: str
    intent: str  # "open" / "close"
    side: str  # position side: "long" / "short"
    quantity: Decimal
    leverage: Decimal
    margin: Decimal  # quote currency locked for an open
    reference_price: Decimal
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None


@dataclass(slots=True)
class ActionOutcome:
    symbol: str
    action: str
    verdict: str  # "approved" / "clamped" / "rejected" / "hold"
    reasons: list[str] = field(default_factory=list)
    order: OrderIntent | None = None


@dataclass(slots=True)
class RiskResult:
    outcomes: list[ActionOutcome]
    # "drawdown" or "daily_loss" when a breaker tripped: every open is rejected and the bot pauses.
    breaker: str | None = None
    breaker_reason: str = ""

    @property
    def orders(self) -> list[OrderIntent]:
        return [o.order for o in self.outcomes if o.order is not None]

    def record(self) -> dict[str, Any]:
        """The outcome as JSON, as a cycle records it (per action: verdict, reasons, the order)."""
        return {
            "breaker": self.breaker,
            "breaker_reason": self.breaker_reason,
            "outcomes": [
                {
                    "symbol": o.symbol,
                    "action": o.action,
                    "verdict": o.verdict,
                    "reasons": o.reasons,
                    "order": None if o.order is None else _order_record(o.order),
                }
                for o in self.outcomes
            ],
        }


def _order_record(order: OrderIntent) -> dict[str, Any]:
    return {
        "intent": order.intent,
        "side": order.side,
        "quantity": str(order.quantity),
        "leverage": str(order.leverage),
        "margin": str(order.margin),
        "reference_price": str(order.reference_price),
        "stop_loss": None if order.stop_loss is None else str(order.stop_loss),
        "take_profit": None if order.take_profit is None else str(order.take_profit),
    }


@dataclass(frozen=True, slots=True)
class RiskInput:
    actions: list[ProposedAction]
    limits: RiskLimits
    account: AccountState
    positions: list[OpenPosition]
    markets: dict[str, MarketInfo]
    prices: dict[str, Decimal]
    allowed_symbols: list[str]
    fee_bps: Decimal = Decimal(0)
