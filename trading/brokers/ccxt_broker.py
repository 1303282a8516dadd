"""A live (or testnet) broker on top of the official ccxt client.

Every order carries the deterministic client order id the service wrote before calling
(`clientOrderId`; ccxt maps it to the exchange's own name, e.g. Binance's `newClientOrderId`), so
a submit whose outcome is unknown (timeout, connection reset) is looked up by that id instead of
placed again. Errors are mapped to the two kinds the services act on:

* `TransientBrokerError`: network trouble, timeouts, rate limits, exchange unavailable. The
  outcome of a submit is unknown: look the order up before any resubmit.
* `PermanentBrokerError`: the exchange refused (insufficient funds, invalid order, bad symbol,
  authentication or permission failure, any other exchange error). Retrying will not help.

API keys never leave this object: they are not in its repr, and every message built from a ccxt
exception is scrubbed of the keys and of request signatures before it is logged or raised.
ccxt's own wire logger (which would print request headers, including the API key, at DEBUG) is
replaced by a silent one.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import ccxt

from trading.brokers.base import (
    BrokerFill,
    BrokerOrder,
    BrokerResult,
    PermanentBrokerError,
    TransientBrokerError,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

ZERO = Decimal(0)

# ccxt logs every request with its headers (the API key) at DEBUG; give it a logger that drops
# everything. Made directly, not through getLogger: a logger in the logging manager is re-enabled
# and set to propagate whenever logging is configured again (dictConfig), which would leak keys.
_WIRE_LOGGER = logging.Logger("trading.brokers.ccxt_wire", level=logging.CRITICAL + 1)
_WIRE_LOGGER.addHandler(logging.NullHandler())
_WIRE_LOGGER.propagate = False
_WIRE_LOGGER.disabled = True

# Exchanges whose fetchOrder/cancelOrder accept the client order id as a parameter (checked in
# ccxt's source). Elsewhere `lookup` scans the open and closed orders of the symbol.
FETCH_BY_CLIENT_ID = frozenset(
    {"binance", "binanceus", "binanceusdm", "binancecoinm", "okx", "bitget", "mexc", "htx", "kraken", "phemex"}
)

# ccxt order status -> Order.Status (for orders with nothing filled).
_STATUS = {
    "open": "open",
    "closed": "filled",
    "canceled": "canceled",
    "cancelled": "canceled",
    "expired": "canceled",
    "rejected": "rejected",
}

# Request signatures and key fields that could appear in a URL or body quoted by an error.
_SIGNATURE = re.compile(
    r"\b(signature|sign|apiKey|api_key|X-MBX-APIKEY)\b([\"']?\s*[=:]\s*[\"']?)[^&\s\"',}]+", re.IGNORECASE
)


class CcxtBroker:
    """`trading.brokers.base.Broker` for any exchange ccxt supports.

    `testnet=True` switches ccxt to the exchange's sandbox (`set_sandbox_mode`); an exchange
    without one raises PermanentBrokerError at construction rather than trading real money.
    `config_overrides` is merged into the ccxt constructor config (options, urls, ...).
    `lookup_by_client_id` forces how orders are looked up (default: known per exchange).
    """

    def __init__(
        self,
        *,
        exchange_id: str,
        api_key: str,
        secret: str,
        password: str = "",
        testnet: bool,
        timeout_ms: int = 10000,
        config_overrides: dict[str, Any] | None = None,
        lookup_by_client_id: bool | None = None,
    ) -> None:
        self.exchange_id = exchange_id
        self.testnet = testnet
        self._secrets = tuple(s for s in (api_key, secret, password) if s)
        exchange_class = getattr(ccxt, exchange_id, None) if exchange_id in ccxt.exchanges else None
        if exchange_class is None:
            raise PermanentBrokerError(f"unknown exchange {exchange_id!r}: not a ccxt exchange id")
        config: dict[str, Any] = dict(config_overrides or {})
        config.update(
            {
                "apiKey": api_key,
                "secret": secret,
                "enableRateLimit": True,  # ccxt spaces requests by the exchange's documented limits
                "timeout": timeout_ms,
            }
        )
        if password:
            config["password"] = password
        self._exchange: Any = exchange_class(config)
        self._exchange.logger = _WIRE_LOGGER
        if testnet and not _enable_sandbox(self._exchange):
            raise PermanentBrokerError(testnet_problem(exchange_id))
        # Exchanges that sign with a timestamp (Binance and co.) reject requests from a skewed
        # clock ("outside of the recvWindow"); let ccxt measure the offset when it loads markets.
        options = self._exchange.options
        overridden = (config_overrides or {}).get("options", {})
        if "adjustForTimeDifference" in options and "adjustForTimeDifference" not in overridden:
            options["adjustForTimeDifference"] = True
        self._by_client_id = exchange_id in FETCH_BY_CLIENT_ID if lookup_by_client_id is None else lookup_by_client_id

    def __repr__(self) -> str:
        return f"<CcxtBroker exchange={self.exchange_id} testnet={self.testnet}>"

    # --- The Broker interface --------------------------------------------------------------------

    def submit(self, order: BrokerOrder) -> BrokerResult:
        """Place the order with its client id. Raises TransientBrokerError / PermanentBrokerError."""
        market = self._market(order.symbol)
        if order.quantity <= 0:
            raise PermanentBrokerError(f"order {order.client_order_id}: quantity must be positive")
        params: dict[str, Any] = {"clientOrderId": order.client_order_id}
        price: float | None = None
        if order.type == "market":
            kind = "market"
        elif order.type == "limit":
            kind = "limit"
            price = self._price_arg(order)
        elif order.type in ("stop", "take_profit"):
            # A trigger order that sells/buys at market once the trigger price trades.
            kind = "market"
            flag = "createStopLossOrder" if order.type == "stop" else "createTakeProfitOrder"
            if not (self._exchange.has.get(flag) or self._exchange.has.get("createTriggerOrder")):
                raise PermanentBrokerError(f"{self.exchange_id} does not support {order.type} orders through ccxt")
            params["stopLossPrice" if order.type == "stop" else "takeProfitPrice"] = self._price_arg(order)
        else:
            raise PermanentBrokerError(f"order {order.client_order_id}: unknown order type {order.type!r}")

        if market.get("contract"):
            if order.reduce_only:
                params["reduceOnly"] = True
            elif self._exchange.has.get("setLeverage"):
                # Leverage is an account setting per symbol on most exchanges; set it before the
                # open so the margin the exchange locks matches what risk approved.
                self._call("set_leverage", self._exchange.set_leverage, float(order.leverage), order.symbol)
        elif order.leverage > 1 and not order.reduce_only:
            # Spot has no leverage: refuse rather than silently trade a different exposure.
            raise PermanentBrokerError(f"{order.symbol} is a spot market: leverage {order.leverage} is not possible")
        # Spot has no reduce-only flag: a sell can only sell what the account holds.

        try:
            raw = self._call(
                "submit",
                self._exchange.create_order,
                order.symbol,
                kind,
                order.side,
                float(order.quantity),
                price,
                params,
                passthrough=(ccxt.DuplicateOrderId,),
            )
        except ccxt.DuplicateOrderId:
            # The exchange already has an order with this client id: a previous attempt got
            # through. That order is the answer, not a second one.
            logger.info("order %s already at %s; looking it up", order.client_order_id, self.exchange_id)
            found = self.lookup(client_order_id=order.client_order_id, symbol=order.symbol)
            if found is None:
                raise TransientBrokerError(
                    f"{self.exchange_id} reports order {order.client_order_id} as a duplicate but cannot find it"
                ) from None
            return found
        result = self._result(raw, order.quantity)
        logger.info(
            "order %s %s %s %s on %s: %s, filled %s",
            order.client_order_id,
            order.side,
            order.quantity,
            order.symbol,
            self.exchange_id,
            result.status,
            result.filled_quantity,
        )
        return result

    def lookup(self, *, client_order_id: str, symbol: str) -> BrokerResult | None:
        """The order with this client id, or None if the exchange says it does not exist."""
        market = self._market(symbol)
        if not self._by_client_id:
            raw = self._scan(client_order_id=client_order_id, symbol=symbol)
            return None if raw is None else self._result(raw, None)
        for extra in self._variants(market):
            try:
                raw = self._call(
                    "lookup",
                    self._exchange.fetch_order,
                    None,
                    symbol,
                    {"clientOrderId": client_order_id, **extra},
                    passthrough=(ccxt.OrderNotFound,),
                )
            except ccxt.OrderNotFound:
                continue
            return self._result(raw, None)
        return None

    def cancel(self, *, client_order_id: str, symbol: str) -> None:
        """Cancel an open order; an order that is already gone (filled, canceled, never placed) is fine."""
        market = self._market(symbol)
        if not self._by_client_id:
            raw = self._scan(client_order_id=client_order_id, symbol=symbol)
            if raw is None or _STATUS.get(str(raw.get("status")), "open") != "open":
                return
            try:
                self._call(
                    "cancel", self._exchange.cancel_order, str(raw["id"]), symbol, passthrough=(ccxt.OrderNotFound,)
                )
            except ccxt.OrderNotFound:
                pass
            return
        for extra in self._variants(market):
            try:
                self._call(
                    "cancel",
                    self._exchange.cancel_order,
                    None,
                    symbol,
                    {"clientOrderId": client_order_id, **extra},
                    passthrough=(ccxt.OrderNotFound,),
                )
            except ccxt.OrderNotFound:
                continue
            logger.info("order %s canceled on %s", client_order_id, self.exchange_id)
            return

    def close(self) -> None:
        """Release the HTTP session."""
        self._exchange.close()

    # --- Internals -------------------------------------------------------------------------------

    def _market(self, symbol: str) -> dict[str, Any]:
        # load_markets caches: only the first call of this broker talks to the exchange.
        self._call("load_markets", self._exchange.load_markets)
        try:
            market: dict[str, Any] = self._exchange.market(symbol)
        except ccxt.BadSymbol:
            raise PermanentBrokerError(f"{self.exchange_id} has no market {symbol!r}") from None
        return market

    @staticmethod
    def _variants(market: dict[str, Any]) -> list[dict[str, Any]]:
        # Contract exchanges keep trigger (stop/take-profit) orders apart from plain orders and
        # answer "not found" for one when asked about the other: ask both.
        return [{}, {"trigger": True}] if market.get("contract") else [{}]

    def _scan(self, *, client_order_id: str, symbol: str) -> dict[str, Any] | None:
        """Find an order by client id among the recent orders (exchanges without a direct query)."""
        has = self._exchange.has
        if has.get("fetchOpenOrders") and has.get("fetchClosedOrders"):
            orders = self._call("lookup", self._exchange.fetch_open_orders, symbol) + self._call(
                "lookup", self._exchange.fetch_closed_orders, symbol
            )
        elif has.get("fetchOrders"):
            orders = self._call("lookup", self._exchange.fetch_orders, symbol)
        else:
            raise PermanentBrokerError(f"{self.exchange_id} offers no way to look an order up by its client id")
        for raw in orders:
            if raw.get("clientOrderId") == client_order_id:
                found: dict[str, Any] = raw
                return found
        return None

    def _call(
        self,
        what: str,
        function: Callable[..., T],
        *args: Any,
        passthrough: tuple[type[Exception], ...] = (),
    ) -> T:
        """Call ccxt and map its errors; exceptions in `passthrough` are re-raised as they are."""
        try:
            return function(*args)
        except passthrough:
            raise
        except ccxt.NetworkError as exc:
            # RequestTimeout, DDoSProtection, RateLimitExceeded, ExchangeNotAvailable, InvalidNonce.
            message = self._describe(what, exc)
            logger.warning("%s", message)
            raise TransientBrokerError(message) from None
        except ccxt.ExchangeError as exc:
            # InsufficientFunds, InvalidOrder, BadSymbol, AuthenticationError, PermissionDenied, ...
            message = self._describe(what, exc)
            logger.warning("%s", message)
            raise PermanentBrokerError(message) from None
        except ccxt.BaseError as exc:
            # OperationFailed / BadResponse: the exchange's answer was unusable, so the outcome
            # is unknown; treat it like a timeout (look up before retrying).
            message = self._describe(what, exc)
            logger.warning("%s", message)
            raise TransientBrokerError(message) from None

    def _describe(self, what: str, exc: BaseException) -> str:
        text = f"{self.exchange_id} {what} failed: {type(exc).__name__}: {exc}"
        for secret in self._secrets:
            text = text.replace(secret, "***")
        text = _SIGNATURE.sub(r"\1\2***", text)
        return text[:1000]

    @staticmethod
    def _price_arg(order: BrokerOrder) -> float:
        if order.price is None or order.price <= 0:
            raise PermanentBrokerError(f"order {order.client_order_id}: a {order.type} order needs a positive price")
        return float(order.price)

    def _result(self, raw: dict[str, Any], requested: Decimal | None) -> BrokerResult:
        """A ccxt order structure as a BrokerResult (Decimals, Order.Status values)."""
        amount = _decimal(raw.get("amount")) or requested or ZERO
        filled = _decimal(raw.get("filled")) or ZERO
        status = _STATUS.get(str(raw.get("status")), "")
        if status == "open" and filled > 0:
            status = "partially_filled"
        elif not status:
            # No status in the answer (some exchanges only acknowledge): judge by the fill.
            status = "filled" if amount > 0 and filled >= amount else ("partially_filled" if filled > 0 else "open")
        fills = [self._fill(trade, raw) for trade in raw.get("trades") or []]
        if fills:
            fee = sum((f.fee for f in fills), ZERO)
        else:
            fee = sum((self._fee_in_quote(f, raw, _decimal(raw.get("average"))) for f in _fees(raw)), ZERO)
        average = _decimal(raw.get("average"))
        if average is None and fills:
            quantity = sum((f.quantity for f in fills), ZERO)
            average = sum((f.quantity * f.price for f in fills), ZERO) / quantity if quantity else None
        return BrokerResult(
            status=status,
            exchange_order_id=str(raw.get("id") or ""),
            filled_quantity=filled,
            average_price=average,
            fee=fee,
            fills=fills,
        )

    def _fill(self, trade: dict[str, Any], order: dict[str, Any]) -> BrokerFill:
        price = _decimal(trade.get("price")) or ZERO
        # Binance's order answer lists fills without a time; they happened at the order's time.
        timestamp = trade.get("timestamp") or order.get("timestamp")
        return BrokerFill(
            quantity=_decimal(trade.get("amount")) or ZERO,
            price=price,
            fee=sum((self._fee_in_quote(f, order, price) for f in _fees(trade)), ZERO),
            exchange_fill_id=str(trade.get("id") or ""),
            time=datetime.fromtimestamp(timestamp / 1000, tz=UTC) if isinstance(timestamp, int | float) else None,
        )

    def _fee_in_quote(self, fee: dict[str, Any], order: dict[str, Any], price: Decimal | None) -> Decimal:
        """A fee in the quote currency. Fees charged in the base currency are converted at the fill
        price; fees in a third currency (e.g. BNB) cannot be priced here and count as zero."""
        cost = _decimal(fee.get("cost")) or ZERO
        currency = fee.get("currency")
        symbol = str(order.get("symbol") or "")
        base, _, rest = symbol.partition("/")
        quote = rest.split(":")[0]
        if not cost or currency in (None, quote):
            return cost
        if currency == base and price is not None:
            return cost * price
        logger.warning("fee of %s %s on %s not converted to %s", cost, currency, symbol, quote)
        return ZERO


def _fees(structure: dict[str, Any]) -> list[dict[str, Any]]:
    fees = structure.get("fees")
    if fees:
        return [f for f in fees if isinstance(f, dict)]
    fee = structure.get("fee")
    return [fee] if isinstance(fee, dict) else []


def _decimal(value: Any) -> Decimal | None:
    """ccxt numbers (floats, or strings) as Decimal via their shortest text form, None if absent."""
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _enable_sandbox(exchange: Any) -> bool:
    """Point a ccxt exchange at its testnet; False when ccxt knows none for it."""
    # A sandbox is a `test` URL set, or an exchange's own set_sandbox_mode (e.g. a header).
    overridden = type(exchange).set_sandbox_mode is not ccxt.Exchange.set_sandbox_mode
    if not (exchange.urls.get("test") or overridden):
        return False
    try:
        exchange.set_sandbox_mode(True)
    except (ccxt.NotSupported, TypeError, KeyError):
        return False
    return True


def testnet_problem(exchange_id: str) -> str:
    """Why an account on this exchange cannot be a testnet account, or "" (checked when the
    account is saved, so the mistake is not found only when a live bot starts)."""
    exchange_class = getattr(ccxt, exchange_id, None)
    if exchange_class is None or _enable_sandbox(exchange_class({})):
        return ""
    return f"{exchange_id} has no testnet/sandbox in ccxt; set testnet=false only to trade real money"
