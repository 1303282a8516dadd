"""Fixtures of the trading tests: a local Binance server and a ccxt broker pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.trading.binance_server import BinanceServer
from trading.brokers.ccxt_broker import CcxtBroker

API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"


@pytest.fixture
def binance() -> Iterator[BinanceServer]:
    with BinanceServer(api_key=API_KEY, secret=SECRET) as server:
        yield server


@pytest.fixture
def broker(binance: BinanceServer) -> Iterator[CcxtBroker]:
    broker = CcxtBroker(
        exchange_id="binance",
        api_key=API_KEY,
        secret=SECRET,
        testnet=True,
        timeout_ms=3000,
        config_overrides=binance.ccxt_overrides(),
    )
    yield broker
    broker.close()
