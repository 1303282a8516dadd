"""The trading cycle as a sequence of small stages over an explicit context.

A stage reads and writes only what `CycleContext` holds. Everything a cycle touches outside
itself is an input of the context, so the same stages run a live cycle and a backtest step:

- `clock`: the slot and "now" (the wall clock live; the simulated market clock in a backtest);
- `market`: where snapshots come from (the shared live fetch; a backtest's recorded source);
- `decision_maker`: the bot's rule baseline or LLM;
- `risk`: the risk manager (trading.risk, code the model cannot override);
- `executor`: paper or live execution over the account's `books` (trading.executors/books);
- `recorder`: where the cycle's own record goes (the `Cycle` row, its LLM calls);
- `control`: what the cycle does to its bot (lease, breakers, failure count, LLM totals, alerts);
- `publisher`: where the cycle's events go (the WebSocket streams; nowhere in a backtest).

The order (`run_trade_stages`): market data → exits (settle, protect, mark, breakers) → decision →
risk → execution → record. Exits come before the decision and need no decision maker, so
stop-loss, take-profit, liquidation and the breakers work when every LLM is down. No stage holds
a transaction open across market data, the decision maker or the exchange.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from django.utils import timezone

from bots.decisions import AccountView, Decision, DecisionContext, DecisionMaker, DecisionOutcome, PositionView
from bots.llm_costs import CostConversion, llm_cost_conversion
from bots.models import Bot, Cycle
from bots.performance import sharpe_so_far
from marketdata.types import MarketSnapshot
from trading.accounting import AccountMark, BreakerMarks, mark_account
from trading.books import Books, OpenDetails, PlannedOrder, TradingPublisher
from trading.executors import Executor
from trading.models import Position
from trading.order_ids import order_leg
from trading.risk_types import AccountState, OpenPosition, ProposedAction, RiskInput, RiskLimits, RiskResult
from trading.services import ExitEvent, orders_reconcile, positions_protect

logger = logging.getLogger(__name__)

# --- The inputs ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Clock:
    """When a cycle runs: its slot, and what "now" is for it (UTC-aware)."""

    slot: datetime
    now: Callable[[], datetime] = timezone.now


class MarketSource(Protocol):
    def snapshot(self, *, exchange: str, symbols: list[str], timeframe: str, slot: datetime) -> MarketSnapshot:
        """The market every bot trading these symbols sees in this slot."""


class RiskManager(Protocol):
    """The risk manager's two checks (the module trading.risk is one)."""

    def evaluate(self, inp: RiskInput) -> RiskResult: ...

    def check_breakers(self, account: AccountState, limits: RiskLimits) -> tuple[str | None, str]: ...


class Publisher(TradingPublisher, Protocol):
    """Where the cycle's events go: the books' events and the cycle's own (the module alerts.realtime is one)."""

    def publish_cycle(self, cycle: Cycle, *, owner_id: int) -> None: ...


class CycleRecorder(Protocol):
    """Where the cycle's own record goes: what it saw, said, decided and why."""

    def market(self, cycle: Cycle, snapshot: MarketSnapshot) -> None: ...

    def kind(self, cycle: Cycle, *, kind: str, error: str) -> None: ...

    def decision(self, cycle: Cycle, outcome: DecisionOutcome, conversion: CostConversion | None) -> None: ...

    def risk(self, cycle: Cycle, record: dict[str, Any]) -> None: ...

    def finish(self, cycle: Cycle, *, status: str, error: str, timings: dict[str, int] | None) -> None: ...


class BotControl(Protocol):
    """What a cycle does to its bot beyond the books."""

    def extend_lease(self) -> None: ...

    def status(self) -> str | None: ...

    def trip_breaker(self, *, breaker: str, reason: str) -> None: ...

    def count_failure(self, *, error: str) -> None: ...

    def reset_failures(self) -> None: ...

    def add_llm_usage(self, outcome: DecisionOutcome, conversion: CostConversion | None) -> None: ...

    def exit_hit(self, event: ExitEvent) -> None: ...

    def budget_reached(self, *, reason: str) -> None: ...


class Timer:
    """Milliseconds per stage, and the CPU time of the whole cycle (its own cost, without the waits)."""

    def __init__(self) -> None:
        self.timings: dict[str, int] = {}
        self._cpu_start = time.thread_time()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0) + round((time.perf_counter() - start) * 1000)

    def finish(self) -> dict[str, int]:
        self.timings["cpu_ms"] = round((time.thread_time() - self._cpu_start) * 1000)
        return self.timings


@dataclass(slots=True)
class CycleContext:
    """One bot, one slot: the inputs of its stages and what the stages found so far."""

    bot: Bot
    cycle: Cycle
    clock: Clock
    market: MarketSource
    decision_maker: Callable[[Bot], DecisionMaker]
    risk: RiskManager
    executor: Executor
    recorder: CycleRecorder
    control: BotControl
    publisher: Publisher
    timer: Timer = field(default_factory=Timer)
    # Found by the stages.
    snapshot: MarketSnapshot | None = None
    prices: dict[str, Decimal] = field(default_factory=dict)
    positions: list[Position] = field(default_factory=list)
    account: AccountMark | None = None
    marks: BreakerMarks | None = None
    trades_today: int = 0
    decision: Decision | None = None
    decision_failed: bool = False
    result: RiskResult | None = None

    @property
    def books(self) -> Books:
        return self.executor.books


@dataclass(frozen=True, slots=True)
class Finish:
    """A stage ends the cycle early with this status."""

    status: str
    error: str = ""


# --- The stages ----------------------------------------------------------------------------------


def load_market(ctx: CycleContext) -> None:
    """Market data: the snapshot of the bot's symbols for the slot, recorded on the cycle."""
    bot = ctx.bot
    ctx.snapshot = ctx.market.snapshot(
        exchange=bot.exchange, symbols=list(bot.symbols), timeframe=bot.timeframe, slot=ctx.clock.slot
    )
    ctx.recorder.market(ctx.cycle, ctx.snapshot)
    ctx.prices = {symbol: market.price for symbol, market in ctx.snapshot.markets.items()}


def protect(ctx: CycleContext) -> None:
    """Exits: settle what an interrupted cycle left, close positions whose levels were crossed,
    mark the account and check the breakers (they trip even when the model is down)."""
    assert ctx.snapshot is not None
    orders_reconcile(executor=ctx.executor, current_cycle_id=ctx.cycle.pk, markets=ctx.snapshot.markets)
    for event in positions_protect(executor=ctx.executor, snapshot=ctx.snapshot):
        ctx.control.exit_hit(event)
    books = ctx.books
    ctx.positions = books.open_positions()
    row = books.account()
    ctx.account = mark_account(cash=row.cash, positions=ctx.positions, prices=ctx.prices)
    now = ctx.clock.now()
    ctx.marks = books.update_marks(account=row, equity=ctx.account.equity, today=now.date())
    ctx.trades_today = books.trades_today(now=now)
    breaker, reason = ctx.risk.check_breakers(account_state(ctx), ctx.bot.risk_limits())
    if breaker and ctx.cycle.kind == Cycle.Kind.TRADE:
        ctx.control.trip_breaker(breaker=breaker, reason=reason)
        ctx.recorder.kind(ctx.cycle, kind=Cycle.Kind.PROTECT, error=reason)


def decide(ctx: CycleContext) -> Finish | None:
    """Decision: ask the decision maker (once per slot: a resumed cycle reuses the stored decision)."""
    if ctx.cycle.decision is None:
        outcome = ctx.decision_maker(ctx.bot).decide(decision_context(ctx))
        # The bill in the account's currency, at the rate of this market time (bots.llm_costs).
        conversion = None
        if outcome.calls and ctx.snapshot is not None:
            conversion = llm_cost_conversion(bot=ctx.bot, at=ctx.snapshot.market_time, cost=outcome.cost)
        # The calls were paid for whatever happens next: record them first (budget, leaderboard).
        ctx.control.add_llm_usage(outcome, conversion)
        ctx.recorder.decision(ctx.cycle, outcome, conversion)
        if outcome.skipped_reason:
            record(ctx)
            if outcome.skipped_reason.startswith("llm_budget:"):
                ctx.control.budget_reached(reason=outcome.skipped_reason)
            return Finish(status=Cycle.Status.SKIPPED, error=outcome.skipped_reason)
        if outcome.error:
            # A model that keeps failing (down, revoked key, unusable answers) trips the
            # repeated-failure breaker like any other failing stage.
            ctx.control.count_failure(error=f"decision: {outcome.error}")
            ctx.decision_failed = True
    ctx.decision = Decision.model_validate(ctx.cycle.decision)
    # The wait on the model may have been long: extend the lease before acting.
    ctx.control.extend_lease()
    return None


def assess_risk(ctx: CycleContext) -> None:
    """Risk: every proposed action approved, clamped or rejected, with reasons recorded."""
    ctx.result = ctx.risk.evaluate(risk_input(ctx))
    ctx.recorder.risk(ctx.cycle, ctx.result.record())
    if ctx.result.breaker:
        ctx.control.trip_breaker(breaker=ctx.result.breaker, reason=ctx.result.breaker_reason)


def execute(ctx: CycleContext) -> None:
    """Execution: the approved orders, closes first (they free the cash the opens may need)."""
    assert ctx.result is not None and ctx.decision is not None and ctx.snapshot is not None
    intents = sorted(ctx.result.orders, key=lambda o: 0 if o.intent == "close" else 1)
    status = ctx.control.status()
    if status != Bot.Status.ACTIVE:
        # Paused or stopped (or a breaker tripped) while the model was thinking: no new risk.
        dropped = [o.symbol for o in intents if o.intent == "open"]
        intents = [o for o in intents if o.intent != "open"]
        if dropped:
            ctx.recorder.risk(
                ctx.cycle,
                {**(ctx.cycle.risk or {}), "dropped_opens": dropped, "dropped_because": f"the bot is {status}"},
            )
    planned = [PlannedOrder(leg=order_leg(symbol=o.symbol, intent=o.intent), intent=o) for o in intents]
    if not planned:
        return
    # Written (pending_submit) before any exchange is called; a rerun gets the same rows back.
    orders = ctx.books.prepare_orders(cycle_id=ctx.cycle.pk, slot=ctx.cycle.slot, planned=planned)
    for order, plan in zip(orders, planned, strict=True):
        details = None
        if plan.intent.intent == "open":
            action = ctx.decision.for_symbol(plan.intent.symbol)
            details = OpenDetails(
                stop_loss=plan.intent.stop_loss,
                take_profit=plan.intent.take_profit,
                thesis=action.reasoning if action else "",
                invalidation=action.invalidation if action else "",
                confidence=Decimal(str(action.confidence)).quantize(Decimal("0.001")) if action else None,
            )
        ctx.executor.execute(order=order, market=ctx.snapshot.markets[plan.intent.symbol], details=details)


def record(ctx: CycleContext) -> None:
    """Record: the account marked to the slot's prices, one equity point per cycle."""
    market_time = ctx.snapshot.market_time if ctx.snapshot is not None else None
    bot = ctx.bot
    ctx.books.record_equity(
        prices=ctx.prices,
        llm_cost=bot.llm_cost_total,
        llm_cost_quote=bot.llm_cost_quote_total,
        llm_cost_unconverted=bot.llm_cost_unconverted_total,
        cycle_id=ctx.cycle.pk,
        market_time=market_time,
    )


def finish(ctx: CycleContext, *, status: str, error: str = "", timings: dict[str, int] | None = None) -> Cycle:
    ctx.recorder.finish(ctx.cycle, status=status, error=error, timings=timings)
    ctx.publisher.publish_cycle(ctx.cycle, owner_id=ctx.bot.owner_id)
    return ctx.cycle


def run_trade_stages(ctx: CycleContext) -> Cycle:
    """A trade or protect cycle from market data to record. Exceptions are the caller's to record
    (live: `bots.cycle`, which counts the failure)."""
    timer = ctx.timer
    with timer.stage("market_data"):
        load_market(ctx)
    with timer.stage("exits"):
        protect(ctx)
    if ctx.cycle.kind == Cycle.Kind.PROTECT:
        with timer.stage("record"):
            record(ctx)
        return finish(ctx, status=Cycle.Status.COMPLETED, timings=timer.finish())
    with timer.stage("decision"):
        stop = decide(ctx)
    if stop is not None:
        return finish(ctx, status=stop.status, error=stop.error, timings=timer.finish())
    with timer.stage("risk"):
        assess_risk(ctx)
    with timer.stage("execution"):
        execute(ctx)
    with timer.stage("record"):
        record(ctx)
    if not ctx.decision_failed:
        ctx.control.reset_failures()
    return finish(ctx, status=Cycle.Status.COMPLETED, timings=timer.finish())


# --- What the stages hand the decision maker and the risk manager --------------------------------


def account_state(ctx: CycleContext) -> AccountState:
    assert ctx.account is not None and ctx.marks is not None
    return AccountState(
        equity=ctx.account.equity,
        cash=ctx.account.cash,
        peak_equity=max(ctx.marks.peak_equity, ctx.account.equity),
        day_start_equity=ctx.marks.day_start_equity or ctx.account.equity,
        trades_today=ctx.trades_today,
    )


def decision_context(ctx: CycleContext) -> DecisionContext:
    """What the decision maker sees: the snapshot, the account, the open positions and the limits."""
    assert ctx.account is not None and ctx.snapshot is not None
    bot, account = ctx.bot, ctx.account
    capital = bot.starting_capital
    return DecisionContext(
        bot_id=bot.pk,
        bot_name=bot.name,
        symbols=list(bot.symbols),
        timeframe=bot.timeframe,
        snapshot=ctx.snapshot,
        account=AccountView(
            equity=account.equity,
            cash=account.cash,
            starting_capital=capital,
            return_pct=((account.equity - capital) / capital * 100).quantize(Decimal("0.01"))
            if capital
            else Decimal(0),
            # On the market-time grid, absent until it has enough periods (bots.performance).
            sharpe=sharpe_so_far(bot=bot),
            quote_currency=bot.quote_currency,
            trades_today=ctx.trades_today,
        ),
        positions=[
            PositionView(
                symbol=m.position.symbol,
                side=m.position.side,
                quantity=m.position.quantity,
                entry_price=m.position.entry_price,
                leverage=m.position.leverage,
                margin=m.position.margin,
                unrealized_pnl=m.unrealized_pnl,
                stop_loss=m.position.stop_loss,
                take_profit=m.position.take_profit,
                liquidation_price=m.position.liquidation_price,
                thesis=m.position.thesis,
                invalidation=m.position.invalidation,
                opened_at=m.position.opened_at.isoformat(),
            )
            for m in account.marks
        ],
        limits=bot.risk_limits(),
        slot_iso=ctx.cycle.slot.isoformat(),
        cycle_id=ctx.cycle.pk,
    )


def risk_input(ctx: CycleContext) -> RiskInput:
    assert ctx.decision is not None and ctx.snapshot is not None
    snapshot = ctx.snapshot
    return RiskInput(
        actions=[
            ProposedAction(
                symbol=a.symbol,
                action=a.action.value,
                size_pct=a.size_pct,
                leverage=a.leverage,
                stop_loss=a.stop_loss,
                take_profit=a.take_profit,
            )
            for a in ctx.decision.actions
        ],
        limits=ctx.bot.risk_limits(),
        account=account_state(ctx),
        positions=[
            OpenPosition(
                symbol=p.symbol,
                side=p.side,
                # Risk sizes in the exchange's units (contracts); positions are kept in base units.
                quantity=p.quantity / _contract_size(snapshot, p.symbol),
                entry_price=p.entry_price,
                leverage=p.leverage,
                margin=p.margin,
            )
            for p in ctx.positions
        ],
        markets={symbol: market.info for symbol, market in snapshot.markets.items()},
        prices=dict(ctx.prices),
        allowed_symbols=list(ctx.bot.symbols),
        # Slippage counts as fee here: the fill moves against us, and the cash must still cover it.
        fee_bps=ctx.executor.fee_reserve_bps(),
    )


def _contract_size(snapshot: MarketSnapshot, symbol: str) -> Decimal:
    market = snapshot.markets.get(symbol)
    return market.info.contract_size if market is not None else Decimal(1)
