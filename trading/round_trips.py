"""Round trips: the completed trades a trader reads, one per closed position.

A position is opened by one fill and closed by one fill (no adding to a position, no partial
closes), so a round trip is the position with its two fills: side, quantity, entry and exit
prices, when it opened and closed (wall clock and market time), how long it was held, its gross
PnL, the fees of both fills, the net PnL, why it was closed and the thesis and invalidation the
decision opened it with.

Money is in the bot's quote currency; `return_pct` is the net PnL on the margin committed.
The analytics at the bottom are pure functions of round trips (per bot and per model).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet

from trading.models import Fill, Order, Position

ZERO = Decimal(0)

# Position.close_reason → the exit reason a round trip reports.
EXIT_REASONS: dict[str, str] = {
    Position.CloseReason.DECISION: "signal",
    Position.CloseReason.STOP_LOSS: "stop_loss",
    Position.CloseReason.TAKE_PROFIT: "take_profit",
    Position.CloseReason.LIQUIDATION: "liquidation",
    Position.CloseReason.BOT_STOPPED: "stop_command",
    Position.CloseReason.BREAKER: "breaker",
    "manual": "manual",  # closed by its owner by hand
}
EXIT_REASON_CHOICES = sorted(set(EXIT_REASONS.values()))
CLOSE_REASONS_OF: dict[str, list[str]] = {}
for _close, _exit in EXIT_REASONS.items():
    CLOSE_REASONS_OF.setdefault(_exit, []).append(str(_close))


@dataclass(frozen=True, slots=True)
class RoundTrip:
    position_id: int
    bot_id: int
    symbol: str
    side: str
    quantity: Decimal
    leverage: Decimal
    margin: Decimal
    entry_price: Decimal
    exit_price: Decimal
    opened_at: datetime
    closed_at: datetime
    opened_market_time: datetime | None
    closed_market_time: datetime | None
    gross_pnl: Decimal
    fees: Decimal
    exit_reason: str
    thesis: str
    invalidation: str
    confidence: Decimal | None
    opened_cycle_id: int | None

    @property
    def net_pnl(self) -> Decimal:
        return self.gross_pnl - self.fees

    @property
    def return_pct(self) -> Decimal | None:
        """Net PnL on the margin committed, in percent."""
        if not self.margin:
            return None
        return (self.net_pnl / self.margin * 100).quantize(Decimal("0.0001"))

    @property
    def holding_seconds(self) -> int:
        return max(int((self.closed_at - self.opened_at).total_seconds()), 0)

    @property
    def holding_market_seconds(self) -> int | None:
        """Market time held: None when unknown, or when the replayed market looped meanwhile."""
        if self.opened_market_time is None or self.closed_market_time is None:
            return None
        held = int((self.closed_market_time - self.opened_market_time).total_seconds())
        return held if held >= 0 else None


def closed_positions(queryset: QuerySet[Position]) -> QuerySet[Position]:
    """The round trips' positions: closed ones, newest close first."""
    return queryset.filter(status=Position.Status.CLOSED).order_by("-closed_at", "-pk")


def round_trips(positions: Iterable[Position]) -> list[RoundTrip]:
    """Round trips of closed positions (one more query: the market times of their fills)."""
    rows = [p for p in positions if p.status == Position.Status.CLOSED and p.closed_at is not None]
    times = _fill_market_times([p.pk for p in rows])
    trips = []
    for p in rows:
        opened, closed = times.get(p.pk, (None, None))
        trips.append(
            RoundTrip(
                position_id=p.pk,
                bot_id=p.bot_id,
                symbol=p.symbol,
                side=p.side,
                quantity=p.quantity,
                leverage=p.leverage,
                margin=p.margin,
                entry_price=p.entry_price,
                exit_price=p.exit_price if p.exit_price is not None else p.entry_price,
                opened_at=p.opened_at,
                closed_at=p.closed_at,  # type: ignore[arg-type]  # filtered above
                opened_market_time=opened,
                closed_market_time=closed,
                gross_pnl=p.realized_pnl,
                fees=p.fees,
                exit_reason=EXIT_REASONS.get(p.close_reason, p.close_reason or "unknown"),
                thesis=p.thesis,
                invalidation=p.invalidation,
                confidence=p.confidence,
                opened_cycle_id=p.opened_cycle_id,
            )
        )
    return trips


def _fill_market_times(position_ids: list[int]) -> dict[int, tuple[datetime | None, datetime | None]]:
    """(opening fill's market time, closing fill's market time) by position."""
    if not position_ids:
        return {}
    found: dict[int, list[datetime | None]] = {}
    for position_id, intent, market_time in Fill.objects.filter(order__position_id__in=position_ids).values_list(
        "order__position_id", "order__intent", "market_time"
    ):
        pair = found.setdefault(position_id, [None, None])
        pair[0 if intent == Order.Intent.OPEN else 1] = market_time
    return {pid: (pair[0], pair[1]) for pid, pair in found.items()}


# --- Analytics (pure) ----------------------------------------------------------------------------


@dataclass(slots=True)
class TradeStats:
    """What the round trips of a bot (or of a model's bots) say. Money figures are in the
    bot's quote currency and None for a model (its bots may not share one)."""

    round_trips: int = 0
    win_rate: Decimal | None = None
    avg_holding_seconds: int | None = None
    median_holding_seconds: int | None = None
    long_pct: Decimal | None = None
    short_pct: Decimal | None = None
    avg_leverage: Decimal | None = None
    avg_confidence: Decimal | None = None
    biggest_win_pct: Decimal | None = None
    biggest_loss_pct: Decimal | None = None
    biggest_win: Decimal | None = None
    biggest_loss: Decimal | None = None
    gross_pnl: Decimal | None = None
    fees: Decimal | None = None
    fees_pct_of_gross: Decimal | None = None


def _pct(part: Decimal, whole: Decimal) -> Decimal | None:
    return None if not whole else (part / whole * 100).quantize(Decimal("0.01"))


def trade_stats(trips: Sequence[RoundTrip], *, with_money: bool = True) -> TradeStats:
    """Win rate (net PnL > 0), holding times in market time, long/short mix, average leverage and confidence, biggest win and loss (on margin,
    and in money), fees as a share of the gross PnL's size."""
    stats = TradeStats(round_trips=len(trips))
    if not trips:
        return stats
    n = Decimal(len(trips))
    stats.win_rate = _pct(Decimal(sum(1 for t in trips if t.net_pnl > 0)), n)
    # Market time held; a trip whose market time is unknown (or looped on the replay) is left
    # out rather than mixed in with wall-clock seconds.
    held = [t.holding_market_seconds for t in trips if t.holding_market_seconds is not None]
    if held:
        stats.avg_holding_seconds = round(sum(held) / len(held))
        stats.median_holding_seconds = round(statistics.median(held))
    longs = sum(1 for t in trips if t.side == Position.Side.LONG)
    stats.long_pct = _pct(Decimal(longs), n)
    stats.short_pct = _pct(Decimal(len(trips) - longs), n)
    stats.avg_leverage = (sum((t.leverage for t in trips), ZERO) / n).quantize(Decimal("0.01"))
    confidences = [t.confidence for t in trips if t.confidence is not None]
    if confidences:
        stats.avg_confidence = (sum(confidences, ZERO) / len(confidences)).quantize(Decimal("0.001"))
    returns = [r for r in (t.return_pct for t in trips) if r is not None]
    if returns:
        stats.biggest_win_pct = max(returns) if max(returns) > 0 else None
        stats.biggest_loss_pct = min(returns) if min(returns) < 0 else None
    if with_money:
        best = max(trips, key=lambda t: t.net_pnl)
        worst = min(trips, key=lambda t: t.net_pnl)
        stats.biggest_win = best.net_pnl if best.net_pnl > 0 else None
        stats.biggest_loss = worst.net_pnl if worst.net_pnl < 0 else None
        stats.gross_pnl = sum((t.gross_pnl for t in trips), ZERO)
        stats.fees = sum((t.fees for t in trips), ZERO)
        stats.fees_pct_of_gross = _pct(stats.fees, abs(stats.gross_pnl))
    return stats


def model_trade_stats(trips_by_bot: dict[int, list[RoundTrip]], capital_by_bot: dict[int, Decimal]) -> TradeStats:
    """A model's bots pooled. Fees as a share of gross PnL adds each bot's fees and gross PnL as
    fractions of its starting capital, so bots in different currencies are never summed."""
    pooled = [t for trips in trips_by_bot.values() for t in trips]
    stats = trade_stats(pooled, with_money=False)
    fees = sum((sum((t.fees for t in trips), ZERO) / capital_by_bot[b] for b, trips in trips_by_bot.items()), ZERO)
    gross = sum(
        (sum((t.gross_pnl for t in trips), ZERO) / capital_by_bot[b] for b, trips in trips_by_bot.items()), ZERO
    )
    stats.fees_pct_of_gross = _pct(fees, abs(gross)) if pooled else None
    return stats


def as_row(trip: RoundTrip, *, quote_currency: str) -> dict[str, Any]:
    """A round trip as plain values (the API and its CSV export)."""
    return {
        "position_id": trip.position_id,
        "bot_id": trip.bot_id,
        "symbol": trip.symbol,
        "side": trip.side,
        "quantity": trip.quantity,
        "leverage": trip.leverage,
        "entry_price": trip.entry_price,
        "exit_price": trip.exit_price,
        "opened_at": trip.opened_at,
        "closed_at": trip.closed_at,
        "opened_market_time": trip.opened_market_time,
        "closed_market_time": trip.closed_market_time,
        "holding_seconds": trip.holding_seconds,
        "holding_market_seconds": trip.holding_market_seconds,
        "quote_currency": quote_currency,
        "margin": trip.margin,
        "gross_pnl": trip.gross_pnl,
        "fees": trip.fees,
        "net_pnl": trip.net_pnl,
        "return_pct": trip.return_pct,
        "exit_reason": trip.exit_reason,
        "confidence": trip.confidence,
        "thesis": trip.thesis,
        "invalidation": trip.invalidation,
        "opened_cycle_id": trip.opened_cycle_id,
    }
