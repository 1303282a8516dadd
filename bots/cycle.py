"""The trading cycle: one bot, one slot — market data → exits → decision → risk → orders → record.

Guarantees (each has a test in tests/bots/):
- At most once per slot: the (bot, slot) row is unique; a duplicate delivery finds it finished
  and returns. A cycle left `running` by a dead worker is resumed by the next delivery of the
  same slot once its lease expired: the stored decision and the already written orders are reused,
  so nothing is decided or ordered twice.
- No overlap: the bot's lease is held for the whole cycle.
- No slow I/O in transactions: market data, the decision maker and the exchange are called with
  no transaction open; each database write is its own short transaction.
- Exits first: stop-loss/take-profit/liquidation are checked from candle highs/lows before the
  decision maker is asked, so they work when every LLM is down.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError
from django.db.models import F
from django.utils import timezone

from alerts import realtime
from alerts.services import AlertKind, Event, Severity, alert_raise
from bots.decision_makers import get_decision_maker
from bots.decisions import (
    AccountView,
    Decision,
    DecisionContext,
    DecisionOutcome,
    PositionView,
)
from bots.exceptions import BotError
from bots.models import Bot, Cycle, LLMCall
from bots.services import bot_lease_acquire, bot_lease_release, bot_trip_breaker
from marketdata.exceptions import FeedError
from marketdata.models import Candle
from marketdata.services import snapshot_build
from marketdata.types import CandleData, MarketInfo, MarketSnapshot, SymbolMarket
from trading import risk
from trading.brokers.base import Broker, BrokerError
from trading.metrics import SECONDS_PER_YEAR, sharpe_ratio
from trading.models import EquitySnapshot, Position
from trading.numbers import money, plain
from trading.risk_types import AccountState, OpenPosition, ProposedAction, RiskInput, RiskResult
from trading.services import (
    Account,
    OpenDetails,
    PlannedOrder,
    account_mark,
    equity_record,
    order_execute,
    orders_prepare,
    orders_reconcile,
    positions_protect,
    trades_today,
)

logger = logging.getLogger(__name__)

SHARPE_WINDOW = 500  # equity points the prompt's "Sharpe so far" looks at


class _Timer:
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
        # CPU time of this thread: the cycle's own cost, without the waits on the LLM or exchange.
        self.timings["cpu_ms"] = round((time.thread_time() - self._cpu_start) * 1000)
        return self.timings


def run_cycle(*, bot_id: int, slot: datetime) -> Cycle:
    """Run (or resume, or skip) the cycle of `bot_id` for `slot`; safe to call any number of times."""
    # The lease owner names the slot, so a delivery that finds the lease taken can tell a
    # duplicate of its own slot (nothing to do) from an overlap with another cycle or a stop.
    slot_key = f"cycle:{int(slot.timestamp())}:"
    owner = f"{slot_key}{uuid.uuid4().hex[:12]}"
    if not bot_lease_acquire(bot_id=bot_id, owner=owner):
        holder = Bot.objects.filter(pk=bot_id).values_list("lease_owner", flat=True).first() or ""
        existing = Cycle.objects.filter(bot_id=bot_id, slot=slot).first()
        if existing is not None or holder.startswith(slot_key):
            # A duplicate delivery of a slot another worker is running (or has run).
            return existing or Cycle(bot_id=bot_id, slot=slot, status=Cycle.Status.RUNNING, started_at=timezone.now())
        now = timezone.now()
        cycle, _ = Cycle.objects.get_or_create(
            bot_id=bot_id,
            slot=slot,
            defaults={
                "status": Cycle.Status.SKIPPED,
                "error": f"skipped: the bot was busy ({holder.split(':')[0] or 'lease'} still running)",
                "started_at": now,
                "finished_at": now,
            },
        )
        return cycle
    try:
        bot = Bot.objects.select_related("exchange_account").get(pk=bot_id)
        kind = Cycle.Kind.TRADE
        if bot.status == Bot.Status.PAUSED:
            kind = Cycle.Kind.PROTECT
        elif bot.status == Bot.Status.STOPPED:
            kind = Cycle.Kind.CLOSE_OUT
        try:
            cycle, created = Cycle.objects.get_or_create(
                bot=bot, slot=slot, defaults={"kind": kind, "started_at": timezone.now()}
            )
        except IntegrityError:
            cycle, created = Cycle.objects.get(bot=bot, slot=slot), False
        if not created:
            if cycle.status != Cycle.Status.RUNNING:
                logger.info("cycle %s of bot %s already %s", slot.isoformat(), bot_id, cycle.status)
                return cycle
            # Running, yet we hold the lease: its worker died mid-cycle. Resume it.
            Cycle.objects.filter(pk=cycle.pk).update(attempts=F("attempts") + 1)
            cycle.attempts += 1
            logger.warning("resuming interrupted cycle %s of bot %s (attempt %d)", cycle.pk, bot_id, cycle.attempts)
        if bot.status == Bot.Status.STOPPED and bot.positions.filter(status=Position.Status.OPEN).exists():
            return _run_close_out(bot=bot, cycle=cycle)
        if bot.status not in (Bot.Status.ACTIVE, Bot.Status.PAUSED):
            return _finish(cycle, status=Cycle.Status.SKIPPED, error=f"skipped: the bot is {bot.status}", bot=bot)
        return _run(bot=bot, cycle=cycle, lease_owner=owner)
    finally:
        bot_lease_release(bot_id=bot_id, owner=owner)


def _run(*, bot: Bot, cycle: Cycle, lease_owner: str) -> Cycle:
    timer = _Timer()
    broker: Broker | None = None
    try:
        broker = broker_for_bot(bot)
        with timer.stage("market_data"):
            snapshot = snapshot_build(
                exchange=bot.exchange, symbols=list(bot.symbols), timeframe=bot.timeframe, slot=cycle.slot
            )
            cycle.snapshot = snapshot.data
            cycle.snapshot_hash = snapshot.hash
            cycle.market_time = snapshot.market_time
            cycle.save(update_fields=["snapshot", "snapshot_hash", "market_time"])
        prices = {symbol: market.price for symbol, market in snapshot.markets.items()}

        with timer.stage("exits"):
            orders_reconcile(bot=bot, broker=broker, current_cycle_id=cycle.pk, markets=snapshot.markets)
            exits = positions_protect(bot=bot, snapshot=snapshot, broker=broker)
            for event in exits:
                _alert_exit(
                    bot=bot, reason=event.reason, symbol=event.symbol, price=event.price, position_id=event.position_id
                )
            bot.refresh_from_db()
            positions = list(bot.positions.filter(status=Position.Status.OPEN))
            account = account_mark(bot=bot, prices=prices, positions=positions)
            _update_marks(bot=bot, equity=account.equity)
            opened_today = trades_today(bot_id=bot.pk, now=timezone.now())
            # Breakers need no decision: checked here, they trip even when the model is down.
            breaker, breaker_reason = risk.check_breakers(
                _account_state(bot=bot, account=account, trades=opened_today), bot.risk_limits()
            )
            if breaker and cycle.kind == Cycle.Kind.TRADE:
                bot_trip_breaker(bot=bot, breaker=breaker, reason=breaker_reason)
                cycle.kind = Cycle.Kind.PROTECT
                cycle.error = breaker_reason
                cycle.save(update_fields=["kind", "error"])

        if cycle.kind == Cycle.Kind.PROTECT:
            with timer.stage("record"):
                equity_record(bot=bot, prices=prices, cycle=cycle, market_time=snapshot.market_time)
            return _finish(cycle, status=Cycle.Status.COMPLETED, timings=timer.finish(), bot=bot)

        decision_failed = False
        with timer.stage("decision"):
            if cycle.decision is None:
                outcome = _decide(bot=bot, cycle=cycle, snapshot=snapshot, account=account, trades=opened_today)
                if outcome.skipped_reason:
                    equity_record(bot=bot, prices=prices, cycle=cycle, market_time=snapshot.market_time)
                    if outcome.skipped_reason.startswith("llm_budget:"):
                        _alert_budget(bot=bot, reason=outcome.skipped_reason)
                    return _finish(
                        cycle,
                        status=Cycle.Status.SKIPPED,
                        error=outcome.skipped_reason,
                        timings=timer.finish(),
                        bot=bot,
                    )
                if outcome.error:
                    # A model that keeps failing (down, revoked key, unusable answers) trips the
                    # repeated-failure breaker like any other failing stage.
                    _count_failure(bot=bot, error=f"decision: {outcome.error}")
                    decision_failed = True
            decision = Decision.model_validate(cycle.decision)
            # The wait on the model may have been long: extend the lease before acting.
            bot_lease_acquire(bot_id=bot.pk, owner=lease_owner)

        with timer.stage("risk"):
            result = risk.evaluate(
                _risk_input(
                    bot=bot,
                    decision=decision,
                    snapshot=snapshot,
                    account=account,
                    positions=positions,
                    trades=opened_today,
                )
            )
            cycle.risk = _risk_record(result)
            cycle.save(update_fields=["risk"])
            if result.breaker:
                bot_trip_breaker(bot=bot, breaker=result.breaker, reason=result.breaker_reason)

        with timer.stage("execution"):
            _execute(bot=bot, cycle=cycle, decision=decision, result=result, snapshot=snapshot, broker=broker)

        with timer.stage("record"):
            bot.refresh_from_db()
            equity_record(bot=bot, prices=prices, cycle=cycle, market_time=snapshot.market_time)
        if bot.consecutive_failures and not decision_failed:
            Bot.objects.filter(pk=bot.pk).update(consecutive_failures=0)
        return _finish(cycle, status=Cycle.Status.COMPLETED, timings=timer.finish(), bot=bot)
    except Exception as exc:
        if isinstance(exc, (FeedError, BrokerError, BotError)):
            # An outside service or the bot's setup, said in the message: no traceback to read.
            logger.warning("cycle %s of bot %s failed: %s", cycle.pk, bot.pk, exc)
        else:
            logger.exception("cycle %s of bot %s failed", cycle.pk, bot.pk)
        error = f"{type(exc).__name__}: {exc}"
        _count_failure(bot=bot, error=error)
        return _finish(cycle, status=Cycle.Status.FAILED, error=error, timings=timer.finish(), bot=bot)
    finally:
        if broker is not None:
            broker.close()


def _finish(cycle: Cycle, *, status: str, bot: Bot, error: str = "", timings: dict[str, int] | None = None) -> Cycle:
    cycle.status = status
    cycle.finished_at = timezone.now()
    if error:
        cycle.error = error[:4000]
    update = ["status", "finished_at", "error"]
    if timings is not None:
        cycle.timings = timings
        update.append("timings")
    cycle.save(update_fields=update)
    realtime.publish_cycle(cycle, owner_id=bot.owner_id)
    return cycle


# --- Stages ------------------------------------------------------------------------------------


def _update_marks(*, bot: Bot, equity: Decimal) -> None:
    """Keep the marks the breakers measure from: the peak equity and the equity at 00:00 UTC."""
    today = timezone.now().date()
    fields: dict[str, Any] = {}
    if equity > bot.peak_equity:
        fields["peak_equity"] = equity
    if bot.day_start_date != today:
        fields["day_start_equity"] = equity
        fields["day_start_date"] = today
    if fields:
        Bot.objects.filter(pk=bot.pk).update(**fields)
        for key, value in fields.items():
            setattr(bot, key, value)


def _decide(*, bot: Bot, cycle: Cycle, snapshot: MarketSnapshot, account: Account, trades: int) -> DecisionOutcome:
    ctx = _context(bot=bot, cycle=cycle, snapshot=snapshot, account=account, trades=trades)
    maker = get_decision_maker(bot)
    # Outside any transaction: this may wait on an LLM for many seconds.
    outcome = maker.decide(ctx)
    # The calls were paid for whatever happens next: record them first (budget, leaderboard).
    if outcome.calls:
        LLMCall.objects.bulk_create(
            [
                LLMCall(
                    cycle=cycle,
                    bot=bot,
                    provider=c.provider,
                    model=c.model,
                    purpose=c.purpose,
                    status=LLMCall.Status.OK if c.ok else LLMCall.Status.ERROR,
                    attempts=c.attempts,
                    latency_ms=c.latency_ms,
                    input_tokens=c.input_tokens,
                    output_tokens=c.output_tokens,
                    cost=c.cost,
                    error=_text(c.error)[:4000],
                )
                for c in outcome.calls
            ]
        )
        Bot.objects.filter(pk=bot.pk).update(
            llm_cost_total=F("llm_cost_total") + outcome.cost,
            llm_input_tokens_total=F("llm_input_tokens_total") + outcome.input_tokens,
            llm_output_tokens_total=F("llm_output_tokens_total") + outcome.output_tokens,
        )
        bot.refresh_from_db(fields=["llm_cost_total", "llm_input_tokens_total", "llm_output_tokens_total"])
    cycle.prompt_version = _text(outcome.prompt_version)
    cycle.prompt = _text(outcome.prompt)
    cycle.raw_output = _text(outcome.raw_output)
    cycle.decision = None if outcome.skipped_reason else outcome.decision.model_dump(mode="json")
    cycle.decision_error = _text(outcome.error)[:4000]
    cycle.input_tokens = outcome.input_tokens
    cycle.output_tokens = outcome.output_tokens
    cycle.llm_cost = outcome.cost
    cycle.llm_latency_ms = outcome.latency_ms
    cycle.save(
        update_fields=[
            "prompt_version",
            "prompt",
            "raw_output",
            "decision",
            "decision_error",
            "input_tokens",
            "output_tokens",
            "llm_cost",
            "llm_latency_ms",
        ]
    )
    return outcome


def _text(value: str) -> str:
    """Text for PostgreSQL, which refuses NUL characters (models do emit them)."""
    return value.replace("\x00", "")


def _context(*, bot: Bot, cycle: Cycle, snapshot: MarketSnapshot, account: Account, trades: int) -> DecisionContext:
    equities = list(
        EquitySnapshot.objects.filter(bot=bot).order_by("-time").values_list("equity", flat=True)[:SHARPE_WINDOW]
    )
    equities.reverse()
    equities.append(account.equity)
    capital = bot.starting_capital
    return DecisionContext(
        bot_id=bot.pk,
        bot_name=bot.name,
        symbols=list(bot.symbols),
        timeframe=bot.timeframe,
        snapshot=snapshot,
        account=AccountView(
            equity=account.equity,
            cash=account.cash,
            starting_capital=capital,
            return_pct=((account.equity - capital) / capital * 100).quantize(Decimal("0.01"))
            if capital
            else Decimal(0),
            sharpe=sharpe_ratio(equities, periods_per_year=SECONDS_PER_YEAR / bot.interval_seconds),
            quote_currency=bot.quote_currency,
            trades_today=trades,
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
        slot_iso=cycle.slot.isoformat(),
        cycle_id=cycle.pk,
    )


def _risk_input(
    *, bot: Bot, decision: Decision, snapshot: MarketSnapshot, account: Account, positions: list[Position], trades: int
) -> RiskInput:
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
            for a in decision.actions
        ],
        limits=bot.risk_limits(),
        account=_account_state(bot=bot, account=account, trades=trades),
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
            for p in positions
        ],
        markets={symbol: market.info for symbol, market in snapshot.markets.items()},
        prices={symbol: market.price for symbol, market in snapshot.markets.items()},
        allowed_symbols=list(bot.symbols),
        # Slippage counts as fee here: the fill moves against us, and the cash must still cover it.
        fee_bps=settings.PAPER_FEE_BPS + settings.PAPER_SLIPPAGE_BPS,
    )


def _account_state(*, bot: Bot, account: Account, trades: int) -> AccountState:
    return AccountState(
        equity=account.equity,
        cash=account.cash,
        peak_equity=max(bot.peak_equity, account.equity),
        day_start_equity=bot.day_start_equity or account.equity,
        trades_today=trades,
    )


def _contract_size(snapshot: MarketSnapshot, symbol: str) -> Decimal:
    market = snapshot.markets.get(symbol)
    return market.info.contract_size if market is not None else Decimal(1)


def _risk_record(result: RiskResult) -> dict[str, Any]:
    return {
        "breaker": result.breaker,
        "breaker_reason": result.breaker_reason,
        "outcomes": [
            {
                "symbol": o.symbol,
                "action": o.action,
                "verdict": o.verdict,
                "reasons": o.reasons,
                "order": None
                if o.order is None
                else {
                    "intent": o.order.intent,
                    "side": o.order.side,
                    "quantity": str(o.order.quantity),
                    "leverage": str(o.order.leverage),
                    "margin": str(o.order.margin),
                    "reference_price": str(o.order.reference_price),
                    "stop_loss": None if o.order.stop_loss is None else str(o.order.stop_loss),
                    "take_profit": None if o.order.take_profit is None else str(o.order.take_profit),
                },
            }
            for o in result.outcomes
        ],
    }


def _execute(
    *, bot: Bot, cycle: Cycle, decision: Decision, result: RiskResult, snapshot: MarketSnapshot, broker: Broker | None
) -> None:
    # Closes first: they free the cash the opens may need.
    intents = sorted(result.orders, key=lambda o: 0 if o.intent == "close" else 1)
    status = Bot.objects.filter(pk=bot.pk).values_list("status", flat=True).first()
    if status != Bot.Status.ACTIVE:
        # Paused or stopped (or a breaker tripped) while the model was thinking: no new risk.
        dropped = [o.symbol for o in intents if o.intent == "open"]
        intents = [o for o in intents if o.intent != "open"]
        if dropped:
            cycle.risk = {**(cycle.risk or {}), "dropped_opens": dropped, "dropped_because": f"the bot is {status}"}
            cycle.save(update_fields=["risk"])
    planned = [PlannedOrder(leg=order_leg(symbol=o.symbol, intent=o.intent), intent=o) for o in intents]
    if not planned:
        return
    # Written (pending_submit) before any exchange is called; a rerun gets the same rows back.
    orders = orders_prepare(bot=bot, cycle=cycle, planned=planned)
    for order, plan in zip(orders, planned, strict=True):
        details = None
        if plan.intent.intent == "open":
            action = decision.for_symbol(plan.intent.symbol)
            details = OpenDetails(
                stop_loss=plan.intent.stop_loss,
                take_profit=plan.intent.take_profit,
                thesis=action.reasoning if action else "",
                invalidation=action.invalidation if action else "",
                confidence=Decimal(str(action.confidence)).quantize(Decimal("0.001")) if action else None,
            )
        order_execute(order=order, market=snapshot.markets[plan.intent.symbol], details=details, broker=broker)


def order_leg(*, symbol: str, intent: str) -> str:
    """The leg part of a client order id: stable for a symbol whatever the bot's symbol list."""
    digest = hashlib.sha1(symbol.encode(), usedforsecurity=False).hexdigest()[:6]
    return f"{digest}{'c' if intent == 'close' else 'o'}"


def _count_failure(*, bot: Bot, error: str) -> None:
    Bot.objects.filter(pk=bot.pk).update(consecutive_failures=F("consecutive_failures") + 1)
    bot.refresh_from_db(fields=["consecutive_failures", "status"])
    if bot.consecutive_failures >= settings.BOT_MAX_CONSECUTIVE_FAILURES:
        bot_trip_breaker(
            bot=bot,
            breaker="failures",
            reason=f"{bot.consecutive_failures} cycles in a row failed; last error: {error[:200]}",
        )


def _alert_exit(*, bot: Bot, reason: str, symbol: str, price: Decimal, position_id: int) -> None:
    label = {"stop_loss": "stop-loss", "take_profit": "take-profit", "liquidation": "liquidation"}.get(reason, reason)
    alert_raise(
        owner_id=bot.owner_id,
        bot_id=bot.pk,
        kind=AlertKind.TRADE,
        severity=Severity.CRITICAL if reason == "liquidation" else Severity.INFO,
        message=f"{bot.name}: {symbol} closed by {label} at {plain(price)}",
        payload={"reason": reason, "symbol": symbol, "price": str(price), "position_id": position_id},
        event=Event.POSITION_CLOSED,
        # The same fact the alert evaluator reads from the fills: whichever tells first, tells once.
        dedupe_key=f"position:{position_id}",
    )


def _alert_budget(*, bot: Bot, reason: str) -> None:
    alert_raise(
        owner_id=bot.owner_id,
        bot_id=bot.pk,
        kind=AlertKind.RISK,
        severity=Severity.WARNING,
        message=f"{bot.name} reached its daily LLM budget and holds until 00:00 UTC ({reason})",
        payload={"llm_budget": True, "breaker": "llm_budget", "reason": reason},
        event=Event.BREAKER_TRIPPED,
        dedupe_key=f"llm_budget:{bot.pk}:{timezone.now().date().isoformat()}",  # once a day is enough
    )


# --- Close-out (stop) ----------------------------------------------------------------------------


def bot_close_out(*, bot: Bot) -> tuple[int, Decimal, int]:
    """Cancel the bot's open orders and close its positions at market; (closed, realized, canceled).

    The caller holds the bot's lease. No decision maker is involved. Exchange failures become a
    BotError (the bot stays stopped; the dispatcher retries the close-out).
    """
    from trading.brokers.base import BrokerError
    from trading.services import orders_cancel_open, positions_close_all

    broker: Broker | None = None
    try:
        broker = broker_for_bot(bot)
        canceled = orders_cancel_open(bot=bot, broker=broker)
        open_symbols = sorted(set(bot.positions.filter(status=Position.Status.OPEN).values_list("symbol", flat=True)))
        markets = markets_now(bot=bot, symbols=open_symbols) if open_symbols else {}
        closed, realized = positions_close_all(
            bot=bot, markets=markets, reason=Position.CloseReason.BOT_STOPPED, broker=broker
        )
    except BrokerError as exc:
        raise BotError(f"the exchange could not close the positions ({exc}); the close-out is retried") from None
    finally:
        if broker is not None:
            broker.close()
    if not bot.positions.filter(status=Position.Status.OPEN).exists():
        Bot.objects.filter(pk=bot.pk, status=Bot.Status.STOPPED).update(next_cycle_at=None)
    return closed, realized, canceled


def _run_close_out(*, bot: Bot, cycle: Cycle) -> Cycle:
    timer = _Timer()
    try:
        with timer.stage("execution"):
            closed, realized, _ = bot_close_out(bot=bot)
        with timer.stage("record"):
            bot.refresh_from_db()
            equity_record(bot=bot, prices={}, cycle=cycle)
        if closed:
            alert_raise(
                owner_id=bot.owner_id,
                bot_id=bot.pk,
                kind=AlertKind.SYSTEM,
                event=Event.BOT_STOPPED,
                message=f"{bot.name}: stop completed, {closed} position(s) closed, realized PnL after fees {money(realized, currency=bot.quote_currency)}",
                payload={"closed_positions": closed, "realized_pnl": str(realized)},
            )
        return _finish(cycle, status=Cycle.Status.COMPLETED, timings=timer.finish(), bot=bot)
    except Exception as exc:
        logger.exception("close-out cycle %s of bot %s failed", cycle.pk, bot.pk)
        return _finish(
            cycle, status=Cycle.Status.FAILED, error=f"{type(exc).__name__}: {exc}", timings=timer.finish(), bot=bot
        )


# --- Helpers also used by commands ---------------------------------------------------------------


def broker_for_bot(bot: Bot) -> Broker | None:
    """The live broker of a live bot; None for paper (the paper broker lives in trading.services)."""
    if bot.mode != Bot.Mode.LIVE or bot.exchange_account is None:
        return None
    from trading.brokers import broker_for_account

    return broker_for_account(bot.exchange_account)


def markets_now(*, bot: Bot, symbols: list[str]) -> dict[str, SymbolMarket]:
    """Current markets for closing positions. Falls back to the last stored candle when the feed
    fails, so a stop never depends on the feed answering."""
    try:
        snapshot = snapshot_build(exchange=bot.exchange, symbols=symbols, timeframe=bot.timeframe, slot=timezone.now())
        return dict(snapshot.markets)
    except FeedError as exc:
        logger.warning("feed failed (%s); closing at the last stored prices", exc)
    markets: dict[str, SymbolMarket] = {}
    for symbol in symbols:
        candle = (
            Candle.objects.filter(exchange=bot.exchange, symbol=symbol, timeframe=bot.timeframe)
            .order_by("-open_time")
            .first()
        )
        if candle is None:
            continue
        base, _, quote = symbol.partition("/")
        tiny = Decimal("1e-12")
        markets[symbol] = SymbolMarket(
            symbol=symbol,
            info=MarketInfo(symbol=symbol, base=base, quote=quote.split(":")[0], amount_step=tiny, price_step=tiny),
            candles=(
                CandleData(
                    open_time=candle.open_time,
                    open=candle.open,
                    high=candle.high,
                    low=candle.low,
                    close=candle.close,
                    volume=candle.volume,
                ),
            ),
        )
    return markets
