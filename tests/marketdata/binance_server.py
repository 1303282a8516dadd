"""A local HTTP server speaking Binance's public REST API, for the ccxt feed's tests.

It serves the endpoints ccxt's `binance` (spot, `/api/v3`) and `binanceusdm` (USD-M futures,
`/fapi/v1`) call for markets, candles and funding, in Binance's wire format: exchangeInfo with its
filters, klines as arrays of strings, premiumIndex, and Binance's error bodies
(`{"code": -1121, "msg": "Invalid symbol."}`). Faults (429, 5xx, a slow answer) are queued per
path and served to the next matching request.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

from marketdata.timeframes import timeframe_seconds, to_ms
from marketdata.types import CandleData
from tests.binance_wire import BTCUSDT_FILTERS, spot_exchange_info, spot_symbol
from tests.protocol_server import ProtocolHandler, ProtocolServer

SPOT_SYMBOLS: dict[str, dict[str, Any]] = {
    "ETHBTC": {
        "baseAsset": "ETH",
        "quoteAsset": "BTC",
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": "0.00001000",
                "maxPrice": "922327.00000000",
                "tickSize": "0.00001000",
            },
            {"filterType": "LOT_SIZE", "minQty": "0.00010000", "maxQty": "100000.00000000", "stepSize": "0.00010000"},
            {"filterType": "ICEBERG_PARTS", "limit": 10},
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": "0.00000000",
                "maxQty": "2428.38861347",
                "stepSize": "0.00000000",
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": "0.00010000",
                "applyMinToMarket": True,
                "maxNotional": "9000000.00000000",
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
        ],
    },
    "BTCUSDT": {"baseAsset": "BTC", "quoteAsset": "USDT", "filters": BTCUSDT_FILTERS},
}

FUTURES_SYMBOLS: dict[str, dict[str, Any]] = {
    "XRPUSDT": {
        "baseAsset": "XRP",
        "quoteAsset": "USDT",
        "marginAsset": "USDT",
        "pricePrecision": 4,
        "quantityPrecision": 1,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": "0.0143", "maxPrice": "100000", "tickSize": "0.0001"},
            {"filterType": "LOT_SIZE", "minQty": "0.1", "maxQty": "10000000", "stepSize": "0.1"},
            {"filterType": "MARKET_LOT_SIZE", "minQty": "0.1", "maxQty": "2000000", "stepSize": "0.1"},
            {"filterType": "MAX_NUM_ORDERS", "limit": 200},
            {"filterType": "MIN_NOTIONAL", "notional": "5"},
            {
                "filterType": "PERCENT_PRICE",
                "multiplierUp": "1.0500",
                "multiplierDown": "0.9500",
                "multiplierDecimal": "4",
            },
        ],
    },
}


@dataclass
class Fault:
    path_contains: str
    status: int = 200
    body: Any = ""  # text, or a JSON-ready value sent as application/json
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class _BinanceHandler(ProtocolHandler):
    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        status, body, headers = self.service.handle(parts.path, query)
        if isinstance(body, str):
            self.send_body(status, body.encode(), content_type="text/html", headers=headers)
        else:
            self.send_json(status, body, headers=headers, content_type="application/json;charset=UTF-8")


class BinanceServer(ProtocolServer):
    """`with BinanceServer() as server:` (the `binance` fixture) ... `server.url`."""

    handler = _BinanceHandler

    def __init__(self) -> None:
        super().__init__()
        self.klines: dict[tuple[str, str], list[CandleData]] = {}  # (market id, interval) -> candles
        self.funding_rates: dict[str, str] = {"XRPUSDT": "0.00010000"}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._faults: list[Fault] = []

    def fail_next(self, fault: Fault) -> None:
        with self.lock:
            self._faults.append(fault)

    def paths(self, contains: str) -> list[dict[str, str]]:
        with self.lock:
            return [query for path, query in self.requests if contains in path]

    def ccxt_urls(self, exchange_class: Any) -> dict[str, str]:
        """ccxt's `urls['api']` of the exchange with every host replaced by this server."""
        return {
            name: self.url + urlsplit(address).path
            for name, address in exchange_class().urls["api"].items()
            if isinstance(address, str)
        }

    # --- request handling ----------------------------------------------------------------------

    def _take_fault(self, path: str) -> Fault | None:
        with self.lock:
            for index, fault in enumerate(self._faults):
                if fault.path_contains in path:
                    return self._faults.pop(index)
        return None

    def handle(self, path: str, query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        with self.lock:
            self.requests.append((path, query))
        fault = self._take_fault(path)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.status != 200:
                return fault.status, fault.body, fault.headers
        now = int(time.time() * 1000)
        if path == "/api/v3/exchangeInfo":
            return 200, self._exchange_info_spot(now), {}
        if path == "/fapi/v1/exchangeInfo":
            return 200, self._exchange_info_futures(now), {}
        if path in ("/api/v3/klines", "/fapi/v1/klines"):
            return self._klines(query)
        if path == "/fapi/v1/premiumIndex":
            symbol = query.get("symbol", "")
            if symbol not in FUTURES_SYMBOLS:
                return 400, {"code": -1121, "msg": "Invalid symbol."}, {}
            return (
                200,
                {
                    "symbol": symbol,
                    "markPrice": "1.07300000",
                    "indexPrice": "1.07310000",
                    "estimatedSettlePrice": "1.07295000",
                    "lastFundingRate": self.funding_rates[symbol],
                    "interestRate": "0.00010000",
                    "nextFundingTime": now - now % 28_800_000 + 28_800_000,
                    "time": now,
                },
                {},
            )
        return 404, {"code": -1, "msg": f"Unknown path {path}"}, {}

    def _klines(self, query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        symbol, interval = query.get("symbol", ""), query.get("interval", "")
        if symbol not in SPOT_SYMBOLS and symbol not in FUTURES_SYMBOLS:
            return 400, {"code": -1121, "msg": "Invalid symbol."}, {}
        try:
            period_ms = timeframe_seconds(interval) * 1000
        except ValueError:
            return 400, {"code": -1120, "msg": "Invalid interval."}, {}
        limit = min(int(query.get("limit", 500)), 1000)
        start = int(query["startTime"]) if "startTime" in query else None
        end = int(query["endTime"]) if "endTime" in query else None
        candles = [
            c
            for c in self.klines.get((symbol, interval), [])
            if (start is None or to_ms(c.open_time) >= start) and (end is None or to_ms(c.open_time) <= end)
        ]
        # Binance answers the first `limit` candles from startTime, or the latest `limit` without it.
        candles = candles[:limit] if start is not None else candles[-limit:]
        return 200, [_kline(c, period_ms) for c in candles], {}

    def _exchange_info_spot(self, now: int) -> dict[str, Any]:
        symbols = [
            spot_symbol(
                market_id=market_id,
                base=spec["baseAsset"],
                quote=spec["quoteAsset"],
                filters=spec["filters"],
                order_types=("LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"),
            )
            for market_id, spec in SPOT_SYMBOLS.items()
        ]
        return spot_exchange_info(now_ms=now, symbols=symbols)

    def _exchange_info_futures(self, now: int) -> dict[str, Any]:
        return {
            "timezone": "UTC",
            "serverTime": now,
            "futuresType": "U_MARGINED",
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
                {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
            ],
            "exchangeFilters": [],
            "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
            "symbols": [
                {
                    "symbol": market_id,
                    "pair": market_id,
                    "contractType": "PERPETUAL",
                    "deliveryDate": 4133404800000,
                    "onboardDate": 1569398400000,
                    "status": "TRADING",
                    "maintMarginPercent": "2.5000",
                    "requiredMarginPercent": "5.0000",
                    "baseAsset": spec["baseAsset"],
                    "quoteAsset": spec["quoteAsset"],
                    "marginAsset": spec["marginAsset"],
                    "pricePrecision": spec["pricePrecision"],
                    "quantityPrecision": spec["quantityPrecision"],
                    "baseAssetPrecision": 8,
                    "quotePrecision": 8,
                    "underlyingType": "COIN",
                    "underlyingSubType": ["PAYMENT"],
                    "triggerProtect": "0.0500",
                    "liquidationFee": "0.012500",
                    "marketTakeBound": "0.05",
                    "maxMoveOrderLimit": 10000,
                    "filters": spec["filters"],
                    "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET"],
                    "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
                }
                for market_id, spec in FUTURES_SYMBOLS.items()
            ],
        }


def _kline(candle: CandleData, period_ms: int) -> list[Any]:
    open_ms = to_ms(candle.open_time)
    quote_volume = (candle.volume * candle.close).quantize(Decimal("0.00000001"))
    return [
        open_ms,
        f"{candle.open:.8f}",
        f"{candle.high:.8f}",
        f"{candle.low:.8f}",
        f"{candle.close:.8f}",
        f"{candle.volume:.8f}",
        open_ms + period_ms - 1,
        f"{quote_volume:.8f}",
        42,
        f"{candle.volume / 2:.8f}",
        f"{quote_volume / 2:.8f}",
        "0",
    ]
