"""The Candle admin: listed, filtered, browsable by date, read-only."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from marketdata.models import Candle


@pytest.fixture
def candles() -> list[Candle]:
    rows = [
        Candle(
            exchange=exchange,
            symbol=symbol,
            timeframe="1h",
            open_time=datetime(2024, 1, 1, hour, tzinfo=UTC),
            open=Decimal("42000.5"),
            high=Decimal("42100"),
            low=Decimal("41900"),
            close=Decimal("42050.25"),
            volume=Decimal("12.5"),
        )
        for exchange, symbol in (("coinbase", "BTC/USD"), ("binance", "ETH/BTC"))
        for hour in range(3)
    ]
    return Candle.objects.bulk_create(rows)


@pytest.mark.django_db
@pytest.mark.urls("tests.marketdata.admin_urls")
def test_changelist_filters_and_date_hierarchy(admin_client: Any, candles: list[Candle]) -> None:
    response = admin_client.get("/admin/marketdata/candle/", {"exchange": "coinbase"})
    assert response.status_code == 200
    shown = list(response.context["cl"].result_list)
    assert len(shown) == 3 and {c.symbol for c in shown} == {"BTC/USD"}
    content = response.content.decode()
    assert "42050.25" in content
    filters = [spec.title for spec in response.context["cl"].filter_specs]
    assert filters == ["exchange", "symbol", "timeframe"]
    by_day = admin_client.get("/admin/marketdata/candle/", {"open_time__year": "2024", "open_time__month": "1"})
    assert by_day.status_code == 200 and len(by_day.context["cl"].result_list) == 6


@pytest.mark.django_db
@pytest.mark.urls("tests.marketdata.admin_urls")
def test_candles_are_read_only(admin_client: Any, candles: list[Candle]) -> None:
    candle = candles[0]
    assert admin_client.get("/admin/marketdata/candle/add/").status_code == 403
    page = admin_client.get(f"/admin/marketdata/candle/{candle.pk}/change/")
    assert page.status_code == 200
    assert 'name="close"' not in page.content.decode()  # shown, not editable
    posted = admin_client.post(f"/admin/marketdata/candle/{candle.pk}/change/", {"close": "1"})
    assert posted.status_code == 403
    candle.refresh_from_db()
    assert candle.close == Decimal("42050.25")
