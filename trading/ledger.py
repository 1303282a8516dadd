"""The ledger check: one account's books agree with each other, in Decimal.

What must hold for every bot (the identities the trading flows keep, trading.books):

1. cash = starting capital + realized PnL of closed positions − fees − margin held by open
   positions + adjustments;
2. each position's quantity = its opening fills (in base units: fills are in the exchange's
   units, contracts, times the position's contract size), and a closed position's closing fills
   give the same quantity back; its fees = its fills' fees; a filled order has fills for what it
   filled, and every fill belongs to a position of the same bot;
3. every equity point = its cash + the margin of the positions open at its time + their unrealized
   PnL at its marks (the prices it recorded), and its cash, realized PnL and fees are what the
   books held at its time (replayed from the fills, positions and adjustments before it).

The replay orders one bot's writes by their timestamps (a fill's, a position's opening and
closing, an adjustment's, the equity point's): they are written one after the other under the
bot's lease, so this holds as long as the hosts' clocks agree (NTP) to better than the time between
two of them.

On PostgreSQL (numeric columns) every comparison is exact. SQLite, the embedded default, keeps 15
significant digits of a stored decimal (its NUMERIC storage), so there each comparison allows the
rounding the stored values it involves can carry (at most one unit of the 15th significant digit
of the largest amount, per value), and says so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection

from trading.accounting import mark_account
from trading.models import AccountAdjustment, EquitySnapshot, Fill, Order, Position, TradingAccount
from trading.numbers import plain

ZERO = Decimal(0)
# Significant digits SQLite keeps of a decimal (TEXT → REAL conversion of a NUMERIC column).
SQLITE_DIGITS = 15
# Equity points reported in full; the rest are counted (a wrong entry puts every later one off).
MAX_EQUITY_REPORTS = 5


@dataclass(slots=True)
class LedgerReport:
    """What the check found for one bot: discrepancies (empty when the books agree) and counts."""

    bot_id: int
    discrepancies: list[str] = field(default_factory=list)
    positions: int = 0
    fills: int = 0
    equity_points: int = 0
    adjustments: int = 0

    @property
    def clean(self) -> bool:
        return not self.discrepancies


Tolerance = Callable[[int, Iterable[Decimal]], Decimal]


def exact(count: int, amounts: Iterable[Decimal]) -> Decimal:
    """No tolerance: the database keeps every decimal as written (PostgreSQL numeric)."""
    return ZERO


def sqlite_rounding(count: int, amounts: Iterable[Decimal]) -> Decimal:
    """The rounding `count` stored values of at most the largest of `amounts` can carry in SQLite."""
    largest = max((abs(a) for a in amounts), default=ZERO)
    if not largest:
        return ZERO
    unit = Decimal(1).scaleb(largest.adjusted() - (SQLITE_DIGITS - 1))
    return unit * count


def storage_tolerance() -> Tolerance:
    """The tolerance of the default database's decimal storage."""
    return sqlite_rounding if connection.vendor == "sqlite" else exact


def ledger_check(*, bot_id: int, capital: Decimal, currency: str = "", tolerance: Tolerance = exact) -> LedgerReport:
    """Check one bot's books against each other (see the module docstring); never raises for
    what it finds, it reports it."""
    report = LedgerReport(bot_id=bot_id)
    unit = f" {currency}" if currency else ""

    def off(what: str, actual: Decimal, expected: Decimal, detail: str, count: int, *amounts: Decimal) -> None:
        allowed = tolerance(count, (actual, expected, *amounts))
        if abs(actual - expected) > allowed:
            report.discrepancies.append(
                f"{what} is {plain(actual)}{unit}, the books say {plain(expected)}{unit} ({detail}): "
                f"off by {plain(actual - expected)}{unit}"
            )

    cash = TradingAccount.objects.filter(pk=bot_id).values_list("cash", flat=True).first()
    positions = list(Position.objects.filter(bot_id=bot_id).order_by("opened_at", "pk"))
    fills = list(
        Fill.objects.filter(bot_id=bot_id)
        .order_by("created_at", "pk")
        .values(
            "pk",
            "bot_id",
            "quantity",
            "fee",
            "created_at",
            "order_id",
            "order__bot_id",
            "order__position_id",
            "order__intent",
        )
    )
    adjustments = list(AccountAdjustment.objects.filter(bot_id=bot_id).values_list("amount", "created_at"))
    report.positions, report.fills, report.adjustments = len(positions), len(fills), len(adjustments)

    _check_positions(report=report, positions=positions, fills=fills, off=off)
    _check_orders(report=report, bot_id=bot_id, fills=fills, off=off)

    # 1. The account's cash.
    closed = [p for p in positions if p.status == Position.Status.CLOSED]
    held = [p for p in positions if p.status == Position.Status.OPEN]
    realized = sum((p.realized_pnl for p in closed), ZERO)
    fees = sum((p.fees for p in positions), ZERO)
    margin = sum((p.margin for p in held), ZERO)
    adjusted = sum((a for a, _ in adjustments), ZERO)
    if cash is None:
        report.discrepancies.append("the bot has no trading account")
    else:
        off(
            "cash",
            cash,
            capital + realized - fees - margin + adjusted,
            f"capital {plain(capital)} + realized {plain(realized)} − fees {plain(fees)} − margin held "
            f"{plain(margin)} + adjustments {plain(adjusted)}",
            # Rewritten by every fill and adjustment; each position's stored values add theirs.
            1 + len(fills) + len(adjustments) + 3 * len(positions),
            capital,
            margin,
            fees,
        )

    # 3. Every equity point, replaying the books up to its time.
    report.equity_points = _check_equity(
        report=report,
        bot_id=bot_id,
        capital=capital,
        positions=positions,
        fills=fills,
        adjustments=adjustments,
        off=off,
    )
    return report


Off = Callable[..., None]


def _check_positions(*, report: LedgerReport, positions: list[Position], fills: list[dict[str, Any]], off: Off) -> None:
    by_position: dict[int, list[dict[str, Any]]] = {}
    for fill in fills:
        position_id = fill["order__position_id"]
        if position_id is None:
            report.discrepancies.append(f"fill {fill['pk']} (order {fill['order_id']}) belongs to no position")
            continue
        if fill["order__bot_id"] != fill["bot_id"]:
            report.discrepancies.append(
                f"fill {fill['pk']} is booked to this bot but its order {fill['order_id']} is another bot's"
            )
        by_position.setdefault(position_id, []).append(fill)
    known = {p.pk for p in positions}
    for position_id in sorted(set(by_position) - known):
        report.discrepancies.append(
            f"fills {[f['pk'] for f in by_position[position_id]]} belong to position {position_id} of another bot"
        )
    for position in positions:
        own = by_position.get(position.pk, [])
        opening = [f for f in own if f["order__intent"] == Order.Intent.OPEN]
        closing = [f for f in own if f["order__intent"] != Order.Intent.OPEN]
        name = f"position {position.pk} ({position.side} {position.symbol}, {position.status})"
        if not opening:
            report.discrepancies.append(f"{name} has no opening fill")
        else:
            off(
                f"{name}: quantity",
                position.quantity,
                sum((f["quantity"] for f in opening), ZERO) * position.contract_size,
                f"its opening fills {', '.join(str(f['pk']) for f in opening)} × contract size {plain(position.contract_size)}",
                1 + len(opening),
                position.quantity,
            )
        if position.status == Position.Status.CLOSED:
            if not closing:
                report.discrepancies.append(f"{name} is closed but has no closing fill")
            else:
                off(
                    f"{name}: quantity closed",
                    sum((f["quantity"] for f in closing), ZERO) * position.contract_size,
                    position.quantity,
                    f"its closing fills {', '.join(str(f['pk']) for f in closing)}",
                    1 + len(closing),
                    position.quantity,
                )
        elif closing:
            report.discrepancies.append(f"{name} is open but has closing fills {[f['pk'] for f in closing]}")
        off(
            f"{name}: fees",
            position.fees,
            sum((f["fee"] for f in own), ZERO),
            "the sum of its fills' fees",
            1 + len(own),
            position.fees,
        )


def _check_orders(*, report: LedgerReport, bot_id: int, fills: list[dict[str, Any]], off: Off) -> None:
    filled_by_order: dict[int, Decimal] = {}
    for fill in fills:
        filled_by_order[fill["order_id"]] = filled_by_order.get(fill["order_id"], ZERO) + fill["quantity"]
    orders = list(
        Order.objects.filter(bot_id=bot_id, status=Order.Status.FILLED).values_list(
            "pk", "client_order_id", "filled_quantity"
        )
    )
    for pk, client_order_id, filled in orders:
        if pk not in filled_by_order:
            report.discrepancies.append(f"order {pk} ({client_order_id}) is filled but has no fill")
            continue
        off(
            f"order {pk} ({client_order_id}): filled quantity",
            filled,
            filled_by_order[pk],
            "the sum of its fills",
            2,
            filled,
        )
    for order_id in sorted(set(filled_by_order) - {pk for pk, _, _ in orders}):
        status = Order.objects.filter(pk=order_id).values_list("status", flat=True).first()
        if status != Order.Status.FILLED:
            report.discrepancies.append(f"order {order_id} has fills but is {status}")


@dataclass(slots=True)
class _Event:
    time: datetime
    kind: str  # "open", "close", "fee", "adjust"
    amount: Decimal = ZERO
    position: Position | None = None


def _check_equity(
    *,
    report: LedgerReport,
    bot_id: int,
    capital: Decimal,
    positions: list[Position],
    fills: list[dict[str, Any]],
    adjustments: list[tuple[Decimal, datetime]],
    off: Off,
) -> int:
    """Replay the books in time order and compare every equity point with them."""
    events = [_Event(p.opened_at, "open", position=p) for p in positions]
    events += [_Event(p.closed_at, "close", position=p) for p in positions if p.closed_at is not None]
    events += [_Event(f["created_at"], "fee", amount=f["fee"]) for f in fills]
    events += [_Event(at, "adjust", amount=amount) for amount, at in adjustments]
    events.sort(key=lambda e: e.time)
    cash, realized, fees, writes = capital, ZERO, ZERO, 1
    open_positions: dict[int, Position] = {}
    checked = 0
    index = 0
    # One wrong entry puts every later equity point off: the first few say where it started.
    disagreeing = 0
    snapshots = EquitySnapshot.objects.filter(bot_id=bot_id).order_by("time", "pk")
    for snapshot in snapshots.iterator():
        while index < len(events) and events[index].time <= snapshot.time:
            event = events[index]
            index += 1
            writes += 1
            if event.kind == "open" and event.position is not None:
                open_positions[event.position.pk] = event.position
                cash -= event.position.margin
            elif event.kind == "close" and event.position is not None:
                open_positions.pop(event.position.pk, None)
                cash += event.position.margin + event.position.realized_pnl
                realized += event.position.realized_pnl
            elif event.kind == "fee":
                cash -= event.amount
                fees += event.amount
            else:
                cash += event.amount
        checked += 1
        found = len(report.discrepancies)
        held = list(open_positions.values())
        margin = sum((p.margin for p in held), ZERO)
        name = f"equity point {snapshot.pk} at {snapshot.time.isoformat()}"
        off(f"{name}: cash", snapshot.cash, cash, "the books replayed to its time", writes, capital, margin)
        off(
            f"{name}: realized PnL",
            snapshot.realized_pnl,
            realized,
            "closed positions up to its time",
            writes,
            realized,
        )
        off(f"{name}: fees", snapshot.fees, fees, "fills up to its time", writes, fees)
        prices = getattr(snapshot, "prices", None)
        unrealized = snapshot.unrealized_pnl
        if isinstance(prices, dict):
            marks = {symbol: Decimal(str(price)) for symbol, price in prices.items()}
            unrealized = mark_account(cash=ZERO, positions=held, prices=marks).unrealized_pnl
            off(
                f"{name}: unrealized PnL",
                snapshot.unrealized_pnl,
                unrealized,
                f"positions {sorted(p.pk for p in held)} at its marks",
                1 + 2 * len(held),
                unrealized,
                margin,
            )
        off(
            f"{name}: equity",
            snapshot.equity,
            snapshot.cash + margin + unrealized,
            f"its cash {plain(snapshot.cash)} + margin {plain(margin)} of positions "
            f"{sorted(p.pk for p in held)} + unrealized {plain(unrealized)}",
            3 + 2 * len(held),
            snapshot.cash,
            margin,
        )
        if len(report.discrepancies) > found:
            disagreeing += 1
            if disagreeing > MAX_EQUITY_REPORTS:
                del report.discrepancies[found:]
    if disagreeing > MAX_EQUITY_REPORTS:
        report.discrepancies.append(
            f"... {disagreeing - MAX_EQUITY_REPORTS} more equity points disagree with the books "
            f"({disagreeing} of {checked} in all)"
        )
    return checked
