"""The decision schema and the decision-maker interface.

Every decision maker (an LLM provider or a rule baseline) turns a `DecisionContext` into a
`DecisionOutcome` whose `decision` has passed `validate_decision`. LLM output is untrusted: it is
parsed with the pydantic models below and checked against the market (`validate_decision`); what
fails is rejected, never trusted. The risk manager (trading.risk) still checks every action after.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from trading.risk_types import RiskLimits

MAX_PRICE = Decimal("1e15")


def _clean_text(value: str) -> str:
    # PostgreSQL text and jsonb refuse NUL characters; a model that emits one must not fail the cycle.
    return value.replace("\x00", "")


class Action(StrEnum):
    OPEN_LONG = "open_long"
    OPEN_SHORT = "open_short"
    CLOSE = "close"
    HOLD = "hold"


class SymbolDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symbol: str = Field(min_length=1, max_length=40)
    action: Action
    size_pct: Decimal = Field(default=Decimal(0), ge=0, le=100, description="margin as % of equity")
    leverage: Decimal = Field(default=Decimal(1), ge=1, le=125)
    # Bounded so that any accepted price fits the database's numeric(30, 12) columns.
    stop_loss: Decimal | None = Field(default=None, gt=0, lt=MAX_PRICE)
    take_profit: Decimal | None = Field(default=None, gt=0, lt=MAX_PRICE)
    confidence: float = Field(default=0.0, ge=0, le=1)
    invalidation: str = Field(default="", max_length=2000)
    reasoning: str = Field(default="", max_length=8000)

    @field_validator("symbol", "invalidation", "reasoning", mode="before")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        return _clean_text(value) if isinstance(value, str) else value

    @field_validator("size_pct", "leverage", "stop_loss", "take_profit")
    @classmethod
    def _finite(cls, value: Decimal | None) -> Decimal | None:
        if value is not None and not value.is_finite():
            raise ValueError("must be a finite number")
        return value


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    market_summary: str = Field(default="", max_length=8000)
    # Required: an answer without its actions (e.g. cut off at the token limit as `{}`) is invalid
    # output to repair or record, not a quiet "hold everything".
    actions: list[SymbolDecision] = Field(max_length=50)

    @field_validator("market_summary", mode="before")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        return _clean_text(value) if isinstance(value, str) else value

    def for_symbol(self, symbol: str) -> SymbolDecision | None:
        return next((a for a in self.actions if a.symbol == symbol), None)

    @classmethod
    def hold_all(cls, symbols: list[str], reason: str) -> Decision:
        return cls(
            market_summary=reason,
            actions=[SymbolDecision(symbol=s, action=Action.HOLD, reasoning=reason) for s in symbols],
        )


class DecisionInvalid(ValueError):
    """The decision maker's output failed the schema or the market checks."""


def validate_decision(raw: dict[str, Any] | Decision, *, symbols: list[str], prices: dict[str, Decimal]) -> Decision:
    """Parse `raw` and check it against the bot's symbols and current prices.

    Rejects: unknown symbols, a symbol twice, an open without size, a stop-loss or take-profit on
    the wrong side of the current price. Raises DecisionInvalid with every problem found.
    """
    try:
        decision = raw if isinstance(raw, Decision) else Decision.model_validate(raw)
    except ValidationError as exc:
        raise DecisionInvalid(_format_validation_error(exc)) from None
    problems: list[str] = []
    seen: set[str] = set()
    for index, action in enumerate(decision.actions):
        where = f"actions[{index}] ({action.symbol})"
        if action.symbol not in symbols:
            problems.append(f"{where}: symbol not traded by this bot (allowed: {', '.join(symbols)})")
            continue
        if action.symbol in seen:
            problems.append(f"{where}: symbol appears more than once")
        seen.add(action.symbol)
        if action.action in (Action.OPEN_LONG, Action.OPEN_SHORT):
            if action.size_pct <= 0:
                problems.append(f"{where}: size_pct must be above 0 to open a position")
            price = prices.get(action.symbol)
            if price is not None:
                long = action.action == Action.OPEN_LONG
                if action.stop_loss is not None and (action.stop_loss >= price if long else action.stop_loss <= price):
                    side = "below" if long else "above"
                    problems.append(f"{where}: stop_loss {action.stop_loss} must be {side} the price {price}")
                if action.take_profit is not None and (
                    action.take_profit <= price if long else action.take_profit >= price
                ):
                    side = "above" if long else "below"
                    problems.append(f"{where}: take_profit {action.take_profit} must be {side} the price {price}")
    if problems:
        raise DecisionInvalid("; ".join(problems))
    # Symbols the answer left out are held.
    missing = [s for s in symbols if s not in seen]
    if missing:
        decision = decision.model_copy(
            update={"actions": decision.actions + [SymbolDecision(symbol=s, action=Action.HOLD) for s in missing]}
        )
    return decision


def _format_validation_error(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        loc = ".".join(str(p) for p in error["loc"]) or "(root)"
        parts.append(f"{loc}: {error['msg']}")
    return "; ".join(parts)


# --- The interface -------------------------------------------------------------------------------


# The limits a decision maker is told about are the ones the risk manager enforces.
RiskLimitsView = RiskLimits


@dataclass(frozen=True, slots=True)
class AccountView:
    equity: Decimal
    cash: Decimal
    starting_capital: Decimal
    return_pct: Decimal
    sharpe: Decimal | None
    quote_currency: str
    trades_today: int


@dataclass(frozen=True, slots=True)
class PositionView:
    symbol: str
    side: str  # long / short
    quantity: Decimal
    entry_price: Decimal
    leverage: Decimal
    margin: Decimal
    unrealized_pnl: Decimal
    stop_loss: Decimal | None
    take_profit: Decimal | None
    liquidation_price: Decimal | None
    thesis: str
    invalidation: str
    opened_at: str  # ISO 8601 UTC


@dataclass(frozen=True, slots=True)
class DecisionContext:
    bot_id: int
    bot_name: str
    symbols: list[str]
    timeframe: str
    snapshot: Any  # marketdata.types.MarketSnapshot
    account: AccountView
    positions: list[PositionView]
    limits: RiskLimitsView
    slot_iso: str
    cycle_id: int | None = None


@dataclass(slots=True)
class LLMCallRecord:
    """One API request, for the LLMCall table (tokens, cost, latency, outcome)."""

    provider: str
    model: str
    purpose: str  # decide / repair / check
    ok: bool
    attempts: int = 1
    latency_ms: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: Decimal = Decimal(0)
    error: str = ""


@dataclass(slots=True)
class DecisionOutcome:
    """What a decision maker returns. `decision` is always valid (a hold when the maker failed)."""

    decision: Decision
    prompt: str = ""
    prompt_version: str = ""
    raw_output: str = ""
    error: str = ""  # why the output was rejected and the cycle holds, if it was
    skipped_reason: str = ""  # set when no request could be made (rate limit, budget)
    input_tokens: int = 0
    output_tokens: int = 0
    cost: Decimal = Decimal(0)
    latency_ms: int = 0
    calls: list[LLMCallRecord] = field(default_factory=list)


class DecisionMaker(Protocol):
    provider: str
    model: str

    def decide(self, ctx: DecisionContext) -> DecisionOutcome:
        """Never raises for a bad answer or a failed API: returns a hold with `error` set."""
