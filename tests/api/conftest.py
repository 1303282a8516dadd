"""Fixtures of the API tests: two users with API clients, bots that have really traded."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from bots.models import Bot
from tests.factories import traded


@pytest.fixture(autouse=True)
def _fresh_throttles(fresh_throttles: None) -> None:
    """Every API test starts with no request counted by the throttles."""


def bot_config(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "alpha",
        "provider": "baseline",
        "model": "buy_and_hold",
        "exchange": "coinbase",
        "symbols": ["BTC/USD"],
        "timeframe": "1h",
        "starting_capital": "10000",
        "interval_seconds": 180,
        "max_trades_per_day": 100,
    }
    data.update(overrides)
    return data


@pytest.fixture
def api(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def other_api(other_user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(other_user)
    return client


@pytest.fixture
def anon() -> APIClient:
    return APIClient()


@pytest.fixture
def traded_bot(db: None, user: Any) -> Bot:
    return traded(owner=user)
