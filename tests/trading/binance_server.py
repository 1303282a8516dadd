"""A local HTTP server speaking Binance's spot REST protocol (the subset a trading bot uses).

Started by tests on 127.0.0.1 with a free port; ccxt's `binance` client is pointed at it through
`urls['test']` (sandbox mode). It implements the real wire format:

* public: `GET /api/v3/ping`, `GET /api/v3/time`, `GET /api/v3/exchangeInfo`
* signed (`X-MBX-APIKEY` header + HMAC-SHA256 `signature` over the query string concatenated with
  the body, `timestamp` within `recvWindow` of the server clock): `POST /api/v3/order`,
  `GET /api/v3/order`, `DELETE /api/v3/order`, `GET /api/v3/openOrders`, `GET /api/v3/allOrders`
* Binance's error bodies and codes: -2010 insufficient balance / duplicate order, -2011 unknown
  order (cancel), -2013 order does not exist (query), -1022 bad signature, -2015 bad API key,
  -1021 timestamp outside the recvWindow, -1003 with HTTP 429 when rate limited.

Market orders fill at once at `price`; LIMIT, STOP_LOSS and TAKE_PROFIT orders rest as NEW.
Knobs for failure cases: `order_delay` (the order is recorded, then the answer comes late, as when a
client times out), `query_delay` (a slow order query), `rate_limited` (answer the next N requests with 429), `time_offset_ms` (a
server clock that differs from ours).
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.binance_wire import BTCUSDT_FILTERS, spot_exchange_info, spot_symbol
from tests.protocol_server import ProtocolHandler, ProtocolServer

SYMBOL = "BTCUSDT"


@dataclass
class Recorded:
    method: str
    path: str
    params: dict[str, str]
    api_key: str | None


@dataclass
class BinanceState:
    api_key: str
    secret: str
    price: Decimal = Decimal("50000.00")
    balances: dict[str, Decimal] = field(default_factory=lambda: {"USDT": Decimal(10000), "BTC": Decimal(1)})
    fee_rate: Decimal = Decimal("0.001")
    order_delay: float = 0.0
    query_delay: float = 0.0
    rate_limited: int = 0
    time_offset_ms: int = 0
    orders: list[dict[str, Any]] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    next_order_id: int = 1000
    next_trade_id: int = 5000
    lock: threading.Lock = field(default_factory=threading.Lock)

    def now_ms(self) -> int:
        return int(time.time() * 1000) + self.time_offset_ms

    def posts(self, path: str = "/api/v3/order") -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST" and r.path == path]


class BinanceError(Exception):
    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


def _exchange_info(state: BinanceState) -> dict[str, Any]:
    symbol = spot_symbol(market_id=SYMBOL, base="BTC", quote="USDT", filters=BTCUSDT_FILTERS)
    return spot_exchange_info(now_ms=state.now_ms(), symbols=[symbol])


def _fmt(value: Decimal) -> str:
    return f"{value:.8f}"


class _Handler(ProtocolHandler):
    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        state = self.service.state
        split = urlsplit(self.path)
        body = self.read_body().decode()
        params = dict(parse_qsl(split.query, keep_blank_values=True))
        params.update(dict(parse_qsl(body, keep_blank_values=True)))
        with state.lock:
            state.requests.append(Recorded(method, split.path, params, self.headers.get("X-MBX-APIKEY")))
            limited = state.rate_limited > 0
            if limited:
                state.rate_limited -= 1
        try:
            if limited:
                raise BinanceError(
                    429,
                    -1003,
                    "Too many requests; current limit of IP(127.0.0.1) is 6000 requests per minute. "
                    "Please use WebSocket Streams for live updates to avoid polling the API.",
                )
            route = (method, split.path)
            if route == ("GET", "/api/v3/ping"):
                self._json(200, {})
            elif route == ("GET", "/api/v3/time"):
                self._json(200, {"serverTime": state.now_ms()})
            elif route == ("GET", "/api/v3/exchangeInfo"):
                self._json(200, _exchange_info(state))
            elif split.path in ("/api/v3/order", "/api/v3/openOrders", "/api/v3/allOrders"):
                self._check_signed(split.query, body, params)
                if route == ("POST", "/api/v3/order"):
                    self._new_order(params)
                elif route == ("GET", "/api/v3/order"):
                    time.sleep(state.query_delay)
                    self._json(200, self._order_view(self._find(params, -2013, "Order does not exist.")))
                elif route == ("DELETE", "/api/v3/order"):
                    self._cancel(params)
                elif route == ("GET", "/api/v3/openOrders"):
                    with state.lock:
                        found = [o for o in state.orders if o["status"] == "NEW"]
                    self._json(200, [self._order_view(o) for o in found])
                elif route == ("GET", "/api/v3/allOrders"):
                    with state.lock:
                        found = list(state.orders)
                    self._json(200, [self._order_view(o) for o in found])
                else:
                    raise BinanceError(404, -1000, "Unknown route.")
            else:
                raise BinanceError(404, -1000, "Unknown route.")
        except BinanceError as exc:
            headers = {"Retry-After": "1"} if exc.status == 429 else {}
            self._json(exc.status, {"code": exc.code, "msg": exc.msg}, headers)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test); nothing to answer

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self.send_json(status, payload, headers=headers, content_type="application/json;charset=UTF-8")

    def _check_signed(self, query: str, body: str, params: dict[str, str]) -> None:
        state = self.service.state
        if self.headers.get("X-MBX-APIKEY") != state.api_key:
            raise BinanceError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        # totalParams = query string + request body, without the signature itself (sent last).
        total = _without_signature(query) + _without_signature(body)
        expected = hmac.new(state.secret.encode(), total.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, params.get("signature", "")):
            raise BinanceError(400, -1022, "Signature for this request is not valid.")
        timestamp = int(params.get("timestamp", "0"))
        window = int(params.get("recvWindow", "5000"))
        now = state.now_ms()
        if not (now - window <= timestamp < now + 1000):
            raise BinanceError(400, -1021, "Timestamp for this request is outside of the recvWindow.")

    def _find(self, params: dict[str, str], code: int, msg: str) -> dict[str, Any]:
        state = self.service.state
        with state.lock:
            for order in state.orders:
                if params.get("symbol") != order["symbol"]:
                    continue
                if "origClientOrderId" in params and order["clientOrderId"] == params["origClientOrderId"]:
                    return order
                if "orderId" in params and str(order["orderId"]) == params["orderId"]:
                    return order
        raise BinanceError(400, code, msg)

    def _new_order(self, params: dict[str, str]) -> None:
        state = self.service.state
        if params.get("symbol") != SYMBOL:
            raise BinanceError(400, -1121, "Invalid symbol.")
        order_type, side = params["type"], params["side"]
        quantity = Decimal(params["quantity"])
        client_id = params.get("newClientOrderId", "")
        with state.lock:
            if any(o["clientOrderId"] == client_id and o["status"] == "NEW" for o in state.orders):
                raise BinanceError(400, -2010, "Duplicate order sent.")
            now = state.now_ms()
            order: dict[str, Any] = {
                "symbol": SYMBOL,
                "orderId": state.next_order_id,
                "orderListId": -1,
                "clientOrderId": client_id,
                "price": params.get("price", "0.00000000"),
                "origQty": _fmt(quantity),
                "executedQty": "0.00000000",
                "cummulativeQuoteQty": "0.00000000",
                "status": "NEW",
                "timeInForce": params.get("timeInForce", "GTC"),
                "type": order_type,
                "side": side,
                "stopPrice": params.get("stopPrice", "0.00000000"),
                "time": now,
                "updateTime": now,
                "workingTime": now,
                "origQuoteOrderQty": "0.00000000",
                "selfTradePreventionMode": "EXPIRE_MAKER",
                "fills": [],
            }
            if order_type == "MARKET":
                cost = quantity * state.price
                commission = (cost * state.fee_rate).quantize(Decimal("0.00000001"))
                if side == "BUY" and state.balances["USDT"] < cost + commission:
                    raise BinanceError(400, -2010, "Account has insufficient balance for requested action.")
                if side == "SELL" and state.balances["BTC"] < quantity:
                    raise BinanceError(400, -2010, "Account has insufficient balance for requested action.")
                sign = 1 if side == "BUY" else -1
                state.balances["USDT"] -= sign * cost + commission
                state.balances["BTC"] += sign * quantity
                order.update(
                    status="FILLED",
                    executedQty=_fmt(quantity),
                    cummulativeQuoteQty=_fmt(cost),
                    fills=[
                        {
                            "price": _fmt(state.price),
                            "qty": _fmt(quantity),
                            "commission": _fmt(commission),
                            "commissionAsset": "USDT",
                            "tradeId": state.next_trade_id,
                        }
                    ],
                )
                state.next_trade_id += 1
            state.next_order_id += 1
            state.orders.append(order)
            delay = state.order_delay
        if delay:
            # The order is on the book; the answer arrives after the client stopped waiting.
            time.sleep(delay)
        view = self._order_view(order)
        view.pop("time"), view.pop("updateTime"), view.pop("isWorking"), view.pop("stopPrice")
        view["transactTime"] = order["time"]
        view["fills"] = order["fills"]
        self._json(200, view)

    def _cancel(self, params: dict[str, str]) -> None:
        state = self.service.state
        order = self._find(params, -2011, "Unknown order sent.")
        with state.lock:
            if order["status"] != "NEW":
                raise BinanceError(400, -2011, "Unknown order sent.")
            order["status"] = "CANCELED"
            order["updateTime"] = state.now_ms()
        view = self._order_view(order)
        view["origClientOrderId"] = order["clientOrderId"]
        view["transactTime"] = order["updateTime"]
        self._json(200, view)

    @staticmethod
    def _order_view(order: dict[str, Any]) -> dict[str, Any]:
        view = {k: v for k, v in order.items() if k != "fills"}
        view["isWorking"] = order["status"] == "NEW"
        return view


def _without_signature(text: str) -> str:
    head, sep, _ = text.partition("&signature=")
    if sep:
        return head
    return "" if text.startswith("signature=") else text


class BinanceServer(ProtocolServer):
    """`with BinanceServer(api_key, secret) as server:` ... `server.url`, `server.state`."""

    handler = _Handler

    def __init__(self, *, api_key: str, secret: str) -> None:
        super().__init__()
        self.state = BinanceState(api_key=api_key, secret=secret)

    def ccxt_overrides(self) -> dict[str, Any]:
        """ccxt config pointing binance's sandbox (spot) at this server."""
        return {
            "urls": {
                "test": {
                    "public": f"{self.url}/api/v3",
                    "private": f"{self.url}/api/v3",
                    "v1": f"{self.url}/api/v1",
                }
            },
            # Spot only: the futures exchangeInfo endpoints are not served here.
            "options": {"fetchMarkets": {"types": ["spot"]}},
        }
