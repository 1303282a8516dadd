"""An account marked to market: pure arithmetic over cash, open positions and prices (no ORM).

Equity = free cash + each open position's margin + its unrealized PnL, with isolated margin (a
position can lose at most its margin). The cycle, the equity record and the read side all mark
accounts with this one function.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING

from trading import paper

if TYPE_CHECKING:
    from trading.models import Position

ZERO = Decimal(0)


@dataclass(slots=True)
class OpenPositionMark:
    position: Position
    price: Decimal
    unrealized_pnl: Decimal


@dataclass(slots=True)
class AccountMark:
    """An account marked to the given prices."""

    cash: Decimal
    equity: Decimal
    unrealized_pnl: Decimal
    marks: list[OpenPositionMark] = field(default_factory=list)

    @property
    def exposure(self) -> Decimal:
        return sum((m.position.quantity * m.price for m in self.marks), ZERO)


def mark_account(*, cash: Decimal, positions: Iterable[Position], prices: Mapping[str, Decimal]) -> AccountMark:
    """The account marked to `prices`; a position without a price is marked at its entry."""
    marks: list[OpenPositionMark] = []
    for position in positions:
        price = prices.get(position.symbol, position.entry_price)
        upnl = paper.unrealized_pnl(
            side=position.side, quantity=position.quantity, entry=position.entry_price, price=price
        )
        # Isolated margin: a position can lose at most its margin.
        upnl = max(upnl, -position.margin)
        marks.append(OpenPositionMark(position=position, price=price, unrealized_pnl=upnl))
    unrealized = sum((m.unrealized_pnl for m in marks), ZERO)
    equity = cash + sum((m.position.margin for m in marks), ZERO) + unrealized
    return AccountMark(cash=cash, equity=equity, unrealized_pnl=unrealized, marks=marks)


@dataclass(frozen=True, slots=True)
class BreakerMarks:
    """What the breakers measure from: the highest equity seen and the equity at 00:00 UTC."""

    peak_equity: Decimal
    day_start_equity: Decimal
    day_start_date: date | None


def next_marks(*, current: BreakerMarks, equity: Decimal, today: date) -> BreakerMarks:
    """The marks after the account was marked at `equity` on `today` (a new day starts afresh)."""
    return BreakerMarks(
        peak_equity=max(current.peak_equity, equity),
        day_start_equity=current.day_start_equity if current.day_start_date == today else equity,
        day_start_date=today,
    )
