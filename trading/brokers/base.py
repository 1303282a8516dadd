"""The interface of a broker that talks to a real exchange (trading.brokers.ccxt_broker).

The paper broker needs no such interface: its "exchange" is the database, so it fills inside the
same transaction that records the fill (trading.executors.PaperExecutor).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol


class BrokerError(Exception):
    """An exchange call failed."""


class TransientBrokerError(BrokerError):
    """Network trouble, timeout, rate limit, exchange unavailable: the outcome of a submit is
    unknown, so the order must be looked up by its client id before any resubmit."""


class PermanentBrokerError(BrokerError):
    """The exchange refused: bad symbol, insufficient funds, invalid order, auth failure."""


@dataclass(frozen=True, slots=True)
class BrokerOrder:
    client_order_id: str
    symbol: str
    side: str  # buy / sell
    type: str  # market / limit / stop / take_profit
    quantity: Decimal
    price: Decimal | None = None  # limit price or trigger price
    reduce_only: bool = False
    leverage: Decimal = Decimal(1)


@dataclass(frozen=True, slots=True)
class BrokerFill:
    quantity: Decimal
    price: Decimal
    fee: Decimal
    exchange_fill_id: str = ""
    time: datetime | None = None


@dataclass(frozen=True, slots=True)
class BrokerResult:
    status: str  # an Order.Status value: open / partially_filled / filled / canceled / rejected
    exchange_order_id: str
    filled_quantity: Decimal = Decimal(0)
    average_price: Decimal | None = None
    fee: Decimal = Decimal(0)
    fills: list[BrokerFill] = field(default_factory=list)


class Broker(Protocol):
    def submit(self, order: BrokerOrder) -> BrokerResult:
        """Place the order with its client id. Raises TransientBrokerError / PermanentBrokerError."""

    def lookup(self, *, client_order_id: str, symbol: str) -> BrokerResult | None:
        """The order with this client id, or None if the exchange never received it."""

    def cancel(self, *, client_order_id: str, symbol: str) -> None:
        """Cancel an open order (no error if it is already gone)."""

    def close(self) -> None:
        """Release connections."""
