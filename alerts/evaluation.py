"""The rule evaluator, run by beat every ALERT_EVALUATE_SECONDS: reads the books for every rule of
every user at once (a handful of set-based queries, whatever the number of bots) and raises what
fired through alerts.services. Nothing here runs inside a trading cycle.

Two parts:

- **Fills since a cursor** (trade filled, position closed). Every fill of every path (a decision,
  a stop-loss, a liquidation, a stop command, a manual close, a live order reconciled later) is a
  row in the append-only `Fill` book, so reading it after the fact covers them all with no code in
  the cycle. The cursor is the last fill id read; only fills a couple of seconds old are read, so
  a fill whose transaction commits a moment after a later one's is not skipped (fills are written
  in short transactions: no exchange or LLM call inside one). Each alert's de-duplication key
  (`fill:<id>`, `position:<id>`) makes reading a fill twice harmless.
- **Conditions** (drawdown, daily loss, PnL move, volatility, failure rate, LLM spend, unusual
  activity): measured for each (rule, subject) and stepped through alerts.rules.condition_step,
  which alerts when a condition starts to hold.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.db.models import Count, F, Max, OuterRef, Q, Subquery, Sum
from django.utils import timezone

from alerts import realtime
from alerts.models import AlertRule, EvaluationCursor, RuleState
from alerts.rules import (
    CONDITION_KINDS,
    UNUSUAL_BASELINE_MINUTES,
    Event,
    RuleSpec,
    activity_norm,
    condition_holds,
    failure_rate_pct,
    pct_below,
    pct_change,
    unusual_multiple,
)
from alerts.services import book_event_raise, condition_advance, condition_raise, rules_for
from bots.models import Bot, Cycle, LLMCall, quote_of
from marketdata.models import Candle
from trading.models import EquitySnapshot, Fill, Order, Position
from trading.numbers import money, plain

logger = logging.getLogger(__name__)

FILL_CURSOR = "fills"
FILL_BATCH = 5000
# Fills younger than this are left for the next run: an earlier id may still be committing.
FILL_SETTLE = timedelta(seconds=2)
LOCK_KEY = "alerts:evaluate:lock"
EXIT_LABELS = {
    "stop_loss": "stop-loss",
    "take_profit": "take-profit",
    "liquidation": "liquidation",
    "bot_stopped": "the bot's stop",
    "decision": "the model's decision",
    "breaker": "a breaker",
    "manual": "a manual close",
}


def evaluate(*, now: datetime | None = None, lock_seconds: int = 600) -> dict[str, int]:
    """One evaluation run; returns how many alerts each part raised.

    Runs do not overlap (a Redis lock; a run killed mid-way frees it after `lock_seconds`). A run
    is quick in the steady state; one that raises thousands of alerts at once (every bot in a
    drawdown after a crash) takes longer, and the next ticks skip meanwhile. Were two to run at
    once anyway, each rule's state is stepped with an optimistic update: nothing fires twice.
    """
    token = uuid.uuid4().hex
    if not cache.add(LOCK_KEY, token, timeout=lock_seconds):
        return {"skipped": 1}
    try:
        now = now or timezone.now()
        # After a market-wide move thousands of alerts fire in one run: their live events go out
        # together at the end (each alert is committed on its own, so none waits for the others).
        with realtime.batched():
            return {"fills": evaluate_fills(now=now), "conditions": evaluate_conditions(now=now)}
    finally:
        if cache.get(LOCK_KEY) == token:
            cache.delete(LOCK_KEY)


# --- Fills -----------------------------------------------------------------------------------------


def _cursor() -> EvaluationCursor:
    cursor = EvaluationCursor.objects.filter(name=FILL_CURSOR).first()
    if cursor is None:
        # A first run starts from now: history is not news (an upgrade must not send a year of fills).
        start = Fill.objects.aggregate(last=Max("id"))["last"] or 0
        cursor, _ = EvaluationCursor.objects.get_or_create(name=FILL_CURSOR, defaults={"position": start})
    return cursor


def evaluate_fills(*, now: datetime) -> int:
    cursor = _cursor()
    # Primary key range: no other index needed, and the cost follows the new fills, not the book.
    rows = list(
        Fill.objects.filter(id__gt=cursor.position)
        .order_by("id")
        .values(
            "id",
            "bot_id",
            "bot__owner_id",
            "bot__name",
            "symbol",
            "side",
            "quantity",
            "price",
            "fee",
            "created_at",
            "order__intent",
            "order__position_id",
            "order__position__status",
            "order__position__side",
            "order__position__realized_pnl",
            "order__position__fees",
            "order__position__close_reason",
            "order__position__exit_price",
        )[:FILL_BATCH]
    )
    settled = []
    for row in rows:
        if row["created_at"] > now - FILL_SETTLE:
            break
        settled.append(row)
    if not settled:
        return 0
    rules = rules_for(owner_ids={r["bot__owner_id"] for r in settled}, kinds={"trade_filled", "position_closed"})
    raised = 0
    for row in settled:
        owner_rules = rules.get(row["bot__owner_id"])
        if owner_rules:
            raised += _fill_events(row=row, rules=owner_rules)
    # Conditional: a second evaluator that read the same fills does not move the cursor back.
    EvaluationCursor.objects.filter(name=FILL_CURSOR, position=cursor.position).update(position=settled[-1]["id"])
    return raised


def _fill_events(*, row: Mapping[str, Any], rules: list[RuleSpec]) -> int:
    raised = 0
    quote = quote_of(row["symbol"])
    notional = row["quantity"] * row["price"]
    bot_name = row["bot__name"]
    common = {"symbol": row["symbol"], "fill_id": row["id"], "bot_name": bot_name}
    if book_event_raise(
        owner_id=row["bot__owner_id"],
        rules=rules,
        event=Event.TRADE_FILLED,
        message=(
            f"{bot_name}: {row['side']} {plain(row['quantity'])} {row['symbol']} at {plain(row['price'])} "
            f"({money(notional, currency=quote)})"
        ),
        severity="info",
        bot_id=row["bot_id"],
        payload={
            **common,
            "side": row["side"],
            "quantity": str(row["quantity"]),
            "price": str(row["price"]),
            "notional": str(notional),
            "intent": row["order__intent"],
        },  # fmt: skip
        dedupe_key=f"fill:{row['id']}",
        notional=notional,
    ):
        raised += 1
    closing = row["order__intent"] != Order.Intent.OPEN and row["order__position_id"] is not None
    if closing and row["order__position__status"] == Position.Status.CLOSED:
        net = row["order__position__realized_pnl"] - row["order__position__fees"]
        reason = row["order__position__close_reason"]
        label = EXIT_LABELS.get(reason, reason or "a close")
        if book_event_raise(
            owner_id=row["bot__owner_id"],
            rules=rules,
            event=Event.POSITION_CLOSED,
            message=(
                f"{bot_name}: {row['order__position__side']} {row['symbol']} closed by {label} at "
                f"{plain(row['order__position__exit_price'])}, net PnL {money(net, currency=quote)}"
            ),
            severity="critical" if reason == "liquidation" else "info",
            bot_id=row["bot_id"],
            payload={**common, "position_id": row["order__position_id"], "reason": reason, "net_pnl": str(net)},
            dedupe_key=f"position:{row['order__position_id']}",
            net_pnl=net,
        ):
            raised += 1
    return raised


# --- Conditions ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reading:
    """One measurement of one rule for one subject."""

    subject: str
    value: Decimal | None
    bot_id: int | None
    message: str  # what the alert says if it fires (empty when there is no value)
    payload: dict[str, Any]


def window_label(minutes: int) -> str:
    if minutes % 1440 == 0:
        return f"{minutes // 1440} d"
    if minutes % 60 == 0:
        return f"{minutes // 60} h"
    return f"{minutes} min"


def _quote(bot: Mapping[str, Any]) -> str:
    return quote_of(bot["symbols"][0]) if bot["symbols"] else "USD"


def _pct(value: Decimal) -> str:
    return f"{value:.2f} %"


def evaluate_conditions(*, now: datetime) -> int:
    rules = rules_for(owner_ids=None, kinds=CONDITION_KINDS)
    if not rules:
        return 0
    context = _Context(now=now)
    # A join, not a list of ids: with every account's default rules such a list would be long.
    states = {
        (s.rule_id, s.subject): s for s in RuleState.objects.filter(rule__enabled=True, rule__kind__in=CONDITION_KINDS)
    }
    raised = 0
    # Each rule's channels are read once per run (a channel disabled meanwhile: its task sees it).
    channels: dict[tuple[int, ...], list[Any]] = {}
    for owner_id, owner_rules in rules.items():
        for rule in owner_rules:
            try:
                readings = context.readings(owner_id=owner_id, rule=rule)
            except Exception:
                # One odd rule must not stop everyone else's alerts.
                logger.exception("alert rule %s could not be evaluated", rule.id)
                continue
            for reading in readings:
                assert rule.threshold is not None
                holding = condition_holds(kind=rule.kind, threshold=rule.threshold, value=reading.value)
                state = states.get((rule.id, reading.subject))
                if not condition_advance(rule=rule, subject=reading.subject, holding=holding, now=now, state=state):
                    continue
                assert reading.value is not None
                if condition_raise(
                    owner_id=owner_id,
                    rule=rule,
                    event=rule.kind,
                    message=reading.message,
                    bot_id=reading.bot_id,
                    payload={
                        **reading.payload,
                        "value": str(reading.value.quantize(Decimal("0.0001"))),
                        "threshold": str(rule.threshold),
                    },
                    channels_cache=channels,
                ):
                    raised += 1
    return raised


class _Context:
    """The books, read once per kind (and window) for every rule that needs them."""

    def __init__(self, *, now: datetime) -> None:
        self.now = now
        # Owners with a condition rule, and their bots that trade now (active, or paused with their
        # exits watched): subqueries, so no query carries a list of ids that grows with the users.
        self.owners = AlertRule.objects.filter(enabled=True, kind__in=CONDITION_KINDS).values("owner_id")
        self.scope = Bot.objects.filter(owner_id__in=self.owners, status__in=(Bot.Status.ACTIVE, Bot.Status.PAUSED))
        self._cache: dict[Any, Any] = {}

    def _memo(self, key: Any, load: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = load()
        return self._cache[key]

    # Bots that trade now (active, or paused with their exits watched), with their latest equity.
    def bots(self) -> dict[int, list[dict[str, Any]]]:
        def load() -> dict[int, list[dict[str, Any]]]:
            latest = EquitySnapshot.objects.filter(bot=OuterRef("pk")).order_by("-time").values("equity")[:1]
            by_owner: dict[int, list[dict[str, Any]]] = defaultdict(list)
            for row in (
                self.scope.annotate(equity_now=Subquery(latest)).values(
                    "id",
                    "owner_id",
                    "name",
                    "symbols",
                    "exchange",
                    "timeframe",
                    "created_at",
                    "equity_now",
                    # The breakers' marks are the trading account's (trading.TradingAccount).
                    peak_equity=F("account__peak_equity"),
                    day_start_equity=F("account__day_start_equity"),
                    day_start_date=F("account__day_start_date"),
                )  # fmt: skip
            ):
                by_owner[row["owner_id"]].append(row)
            return by_owner

        result: dict[int, list[dict[str, Any]]] = self._memo("bots", load)
        return result

    def equity_before(self, minutes: int) -> dict[int, Decimal]:
        def load() -> dict[int, Decimal]:
            cut = self.now - timedelta(minutes=minutes)
            # equity_bot_time: the last point at or before the window's start, per bot.
            then = (
                EquitySnapshot.objects.filter(bot=OuterRef("pk"), time__lte=cut).order_by("-time").values("equity")[:1]
            )
            return {
                row["id"]: row["then"]
                for row in self.scope.annotate(then=Subquery(then)).values("id", "then")
                if row["then"] is not None
            }

        result: dict[int, Decimal] = self._memo(("equity_before", minutes), load)
        return result

    def cycle_counts(self, minutes: int) -> dict[int, tuple[int, int]]:
        def load() -> dict[int, tuple[int, int]]:
            since = self.now - timedelta(minutes=minutes)
            # uniq_cycle_slot (bot_id, slot) serves the range per bot.
            rows = (
                Cycle.objects.filter(bot_id__in=self.scope.values("pk"), slot__gte=since, kind=Cycle.Kind.TRADE)
                .exclude(status__in=(Cycle.Status.SKIPPED, Cycle.Status.RUNNING))
                .values("bot_id")
                .annotate(
                    total=Count("id"), bad=Count("id", filter=Q(status=Cycle.Status.FAILED) | ~Q(decision_error=""))
                )
            )
            return {r["bot_id"]: (r["total"], r["bad"]) for r in rows}

        result: dict[int, tuple[int, int]] = self._memo(("cycles", minutes), load)
        return result

    def llm_spend(self) -> dict[int, tuple[int, Decimal]]:
        """LLM cost since 00:00 UTC per bot (every bot of the owners, running or not): bot → (owner, cost)."""

        def load() -> dict[int, tuple[int, Decimal]]:
            day_start = self.now.replace(hour=0, minute=0, second=0, microsecond=0)
            # llmcall_bot_created: WHERE bot_id=? AND created_at >= day start, per bot.
            rows = (
                LLMCall.objects.filter(bot__owner_id__in=self.owners, created_at__gte=day_start)
                .values("bot_id", "bot__owner_id")
                .annotate(cost=Sum("cost"))
            )
            return {r["bot_id"]: (r["bot__owner_id"], r["cost"]) for r in rows}

        result: dict[int, tuple[int, Decimal]] = self._memo("llm_spend", load)
        return result

    def fill_counts(self, minutes: int) -> tuple[dict[int, int], dict[int, int]]:
        """Fills per bot in the window, and in the baseline week before it."""

        def load() -> tuple[dict[int, int], dict[int, int]]:
            start = self.now - timedelta(minutes=minutes)
            base_start = start - timedelta(minutes=UNUSUAL_BASELINE_MINUTES)
            ids = self.scope.values("pk")
            # fill_bot_created: WHERE bot_id=? AND created_at in the range, per bot.
            recent = Fill.objects.filter(bot_id__in=ids, created_at__gte=start).values("bot_id").annotate(n=Count("id"))
            base = (
                Fill.objects.filter(bot_id__in=ids, created_at__gte=base_start, created_at__lt=start)
                .values("bot_id")
                .annotate(n=Count("id"))
            )
            return {r["bot_id"]: r["n"] for r in recent}, {r["bot_id"]: r["n"] for r in base}

        result: tuple[dict[int, int], dict[int, int]] = self._memo(("fills", minutes), load)
        return result

    def market_move(self, exchange: str, symbol: str, timeframe: str, minutes: int) -> tuple[Decimal, Decimal] | None:
        """The close at the window's start and the last close, in market time (the replayed market's
        clock is not the wall clock); None without both candles."""

        def load() -> tuple[Decimal, Decimal] | None:
            # uniq_candle (exchange, symbol, timeframe, open_time) serves both reads.
            candles = Candle.objects.filter(exchange=exchange, symbol=symbol, timeframe=timeframe)
            last = candles.order_by("-open_time").values("open_time", "close").first()
            if last is None:
                return None
            then = (
                candles.filter(open_time__lte=last["open_time"] - timedelta(minutes=minutes))
                .order_by("-open_time")
                .values_list("close", flat=True)
                .first()
            )
            return None if then is None else (then, last["close"])

        result: tuple[Decimal, Decimal] | None = self._memo(("market", exchange, symbol, timeframe, minutes), load)
        return result

    # --- Readings per kind ---------------------------------------------------------------------------

    def _scope(self, owner_id: int, rule: RuleSpec) -> list[dict[str, Any]]:
        return [b for b in self.bots().get(owner_id, []) if rule.bot_id is None or b["id"] == rule.bot_id]

    def readings(self, *, owner_id: int, rule: RuleSpec) -> Iterable[Reading]:
        reader = getattr(self, f"_read_{rule.kind}")
        readings: Iterable[Reading] = reader(owner_id, rule)
        return readings

    def _read_drawdown(self, owner_id: int, rule: RuleSpec) -> Iterable[Reading]:
        for bot in self._scope(owner_id, rule):
            equity = bot["equity_now"]
            if equity is None:
                continue
            peak = max(bot["peak_equity"], equity)
            quote = _quote(bot)
            value = pct_below(reference=peak, value=equity)
            yield Reading(
                subject=f"bot:{bot['id']}",
                value=value,
                bot_id=bot["id"],
                message=""
                if value is None
                else (
                    f"{bot['name']}: drawdown {_pct(value)} (equity {money(equity, currency=quote)}, peak "
                    f"{money(peak, currency=quote)}; rule: over {plain(rule.threshold)} %)"
                ),
                payload={"equity": str(equity), "peak_equity": str(peak)},
            )

    def _read_daily_loss(self, owner_id: int, rule: RuleSpec) -> Iterable[Reading]:
        today = self.now.date()
        for bot in self._scope(owner_id, rule):
            equity = bot["equity_now"]
            if equity is None or bot["day_start_date"] != today:
                continue
            start = bot["day_start_equity"]
            quote = _quote(bot)
            value = pct_below(reference=start, value=equity)
            yield Reading(
                subject=f"bot:{bot['id']}",
                value=value,
                bot_id=bot["id"],
                message=""
                if value is None
                else (
                    f"{bot['name']}: down {_pct(value)} since 00:00 UTC "
                    f"({money(start, currency=quote)} → {money(equity, currency=quote)})"
                ),
                payload={"equity": str(equity), "day_start_equity": str(start)},
            )

    def _read_pnl_move(self, owner_id: int, rule: RuleSpec) -> Iterable[Reading]:
        assert rule.window_minutes is not None
        before = self.equity_before(rule.window_minutes)
        label = window_label(rule.window_minutes)
        for bot in self._scope(owner_id, rule):
            equity, then = bot["equity_now"], before.get(bot["id"])
            quote = _quote(bot)
            value = pct_change(before=then, after=equity)
            yield Reading(
                subject=f"bot:{bot['id']}",
                value=value,
                bot_id=bot["id"],
                message=""
                if value is None or then is None
                else (
                    f"{bot['name']}: equity {'up' if value > 0 else 'down'} {_pct(abs(value))} in {label} "
                    f"({money(then, currency=quote)} → {money(equity, currency=quote)})"
                ),
                payload={"equity": str(equity), "equity_before": str(then), "window_minutes": rule.window_minutes},
            )

    def _read_failure_rate(self, owner_id: int, rule: RuleSpec) -> Iterable[Reading]:
        assert rule.window_minutes is not None
        counts = self.cycle_counts(rule.window_minutes)
        label = window_label(rule.window_minutes)
        for bot in self._scope(owner_id, rule):
            total, bad = counts.get(bot["id"], (0, 0))
            value = failure_rate_pct(total=total, bad=bad)
            yield Reading(
                subject=f"bot:{bot['id']}",
                value=value,
                bot_id=bot["id"],
                message=""
                if value is None
                else f"{bot['name']}: {bad} of {total} cycles in the last {label} failed or had invalid model output ({_pct(value)})",
                payload={"cycles": total, "failed_or_invalid": bad, "window_minutes": rule.window_minutes},
            )

    def _read_llm_spend(self, owner_id: int, rule: RuleSpec) -> Iterable[Reading]:
        spend = self.llm_spend()
        if rule.bot_id is not None:
            _, cost = spend.get(rule.bot_id, (owner_id, Decimal(0)))
            name = next(
                (b["name"] for b in self.bots().get(owner_id, []) if b["id"] == rule.bot_id), f"bot {rule.bot_id}"
            )
            yield Reading(
                subject=f"bot:{rule.bot_id}",
                value=cost,
                bot_id=rule.bot_id,
                message=f"{name}: LLM spend today {plain(cost, places=4)} USD (rule: over {plain(rule.threshold)} USD)",
                payload={"llm_cost_today": str(cost)},
            )
            return
        total = sum((cost for owner, cost in spend.values() if owner == owner_id), Decimal(0))
        yield Reading(
            subject="account",
            value=total,
            bot_id=None,
            message=f"Your bots' LLM spend today is {plain(total, places=4)} USD (rule: over {plain(rule.threshold)} USD)",
            payload={"llm_cost_today": str(total)},
        )

    def _read_unusual_activity(self, owner_id: int, rule: RuleSpec) -> Iterable[Reading]:
        assert rule.window_minutes is not None
        recent, base = self.fill_counts(rule.window_minutes)
        label = window_label(rule.window_minutes)
        window_start = self.now - timedelta(minutes=rule.window_minutes)
        for bot in self._scope(owner_id, rule):
            history = max(0, int((window_start - bot["created_at"]).total_seconds() // 60))
            norm = activity_norm(
                baseline_trades=base.get(bot["id"], 0),
                baseline_minutes=min(history, UNUSUAL_BASELINE_MINUTES),
                window_minutes=rule.window_minutes,
            )
            count = recent.get(bot["id"], 0)
            value = unusual_multiple(recent_trades=count, norm=norm)
            yield Reading(
                subject=f"bot:{bot['id']}",
                value=value,
                bot_id=bot["id"],
                message=""
                if value is None
                else f"{bot['name']}: {count} trades in the last {label}, {value:.1f}× its usual {plain(norm, places=1)}",
                payload={
                    "trades": count,
                    "norm": None if norm is None else str(norm),
                    "window_minutes": rule.window_minutes,
                },
            )

    def _read_volatility(self, owner_id: int, rule: RuleSpec) -> Iterable[Reading]:
        assert rule.window_minutes is not None
        label = window_label(rule.window_minutes)
        markets = sorted(
            {
                (bot["exchange"], symbol, bot["timeframe"])
                for bot in self._scope(owner_id, rule)
                for symbol in bot["symbols"]
                if not rule.symbol or symbol == rule.symbol
            }
        )
        for exchange, symbol, timeframe in markets:
            move = self.market_move(exchange, symbol, timeframe, rule.window_minutes)
            then, last = move if move is not None else (None, None)
            value = pct_change(before=then, after=last)
            yield Reading(
                subject=f"market:{exchange}:{symbol}:{timeframe}",
                value=value,
                bot_id=rule.bot_id,
                message=""
                if value is None
                else f"{symbol} on {exchange} moved {value:+.2f} % in {label} of market time ({plain(then)} → {plain(last)})",
                payload={
                    "exchange": exchange,
                    "symbol": symbol,
                    "timeframe": timeframe,
                    "window_minutes": rule.window_minutes,
                },
            )
