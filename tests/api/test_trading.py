"""Positions (live unrealized PnL), orders and fills (paginated, filtered), exchange accounts."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection

from marketdata.models import Candle
from tests.factories import SLOT, traded
from trading.models import EquitySnapshot, ExchangeAccount, Fill, Order, Position

pytestmark = pytest.mark.django_db


def test_open_positions_carry_the_live_price_and_unrealized_pnl(api, traded_bot):
    position = Position.objects.get(bot=traded_bot, status="open")
    cycle = traded_bot.cycles.get()
    price = Candle.objects.get(exchange="coinbase", symbol="BTC/USD", timeframe="1h", open_time=cycle.market_time).close

    rows = api.get("/api/positions/").json()["results"]

    assert [r["id"] for r in rows] == [position.pk]
    assert Decimal(rows[0]["price"]) == price
    assert Decimal(rows[0]["unrealized_pnl"]) == (price - position.entry_price) * position.quantity
    assert rows[0]["thesis"] and rows[0]["side"] == "long"


def test_a_newer_candle_moves_the_unrealized_pnl(api, traded_bot):
    """The mark follows the latest candle the bot's market data has seen (its latest cycle)."""
    position = Position.objects.get(bot=traded_bot, status="open")
    cycle = traded_bot.cycles.get()
    later = cycle.market_time + timedelta(hours=1)
    Candle.objects.update_or_create(
        exchange="coinbase",
        symbol="BTC/USD",
        timeframe="1h",
        open_time=later,
        defaults={"open": 1, "high": 1, "low": 1, "close": position.entry_price * 2, "volume": 1},
    )
    before = Decimal(api.get(f"/api/positions/{position.pk}/").json()["unrealized_pnl"])
    # The account's latest mark (a new equity point) is at the newer candle's market time.
    last = EquitySnapshot.objects.filter(bot=traded_bot).latest("time")
    last.pk, last.time, last.market_time = None, last.time + timedelta(seconds=1), later
    last.save()

    after = Decimal(api.get(f"/api/positions/{position.pk}/").json()["unrealized_pnl"])

    assert after == position.entry_price * position.quantity
    assert after != before


def test_position_status_filter(api, user, traded_bot):
    api.post(f"/api/bots/{traded_bot.pk}/stop/")

    assert api.get("/api/positions/").json()["count"] == 0
    closed = api.get("/api/positions/?status=closed").json()["results"]
    assert len(closed) == 1 and closed[0]["close_reason"] == "bot_stopped"
    assert closed[0]["unrealized_pnl"] is None and closed[0]["exit_price"] is not None
    assert api.get("/api/positions/?status=all").json()["count"] == 1
    assert api.get("/api/positions/?status=bogus").status_code == 400


def test_orders_and_fills_filtered_by_symbol_side_and_time(api, traded_bot):
    order = Order.objects.get(bot=traded_bot)
    fill = Fill.objects.get(bot=traded_bot)

    orders = api.get(f"/api/orders/?bot={traded_bot.pk}&symbol=BTC/USD&side=buy").json()
    assert [o["id"] for o in orders["results"]] == [order.pk]
    assert orders["results"][0]["fills"][0]["id"] == fill.pk
    assert orders["results"][0]["client_order_id"] == order.client_order_id
    assert api.get("/api/orders/?side=sell").json()["count"] == 0
    assert api.get("/api/orders/?symbol=ETH/BTC").json()["count"] == 0
    since = (order.created_at + timedelta(seconds=1)).isoformat()
    assert api.get("/api/orders/", {"since": since}).json()["count"] == 0
    assert api.get("/api/orders/", {"until": since}).json()["count"] == 1
    assert api.get("/api/orders/?since=yesterday").status_code == 400

    fills = api.get(f"/api/fills/?bot={traded_bot.pk}&side=buy").json()["results"]
    assert [(f["id"], f["intent"], Decimal(f["price"])) for f in fills] == [(fill.pk, "open", fill.price)]
    assert api.get("/api/fills/?side=sell").json()["count"] == 0


def test_lists_are_paginated_newest_first(api, user):
    # Four bots, one opening order each.
    bots = [traded(owner=user, name=f"bot-{step}", slot=SLOT + timedelta(seconds=180 * step)) for step in range(4)]
    first = api.get("/api/orders/?page_size=2").json()
    second = api.get("/api/orders/?page_size=2&page=2").json()

    assert first["count"] == 4 and len(first["results"]) == 2 and first["next"]
    assert len(second["results"]) == 2 and second["next"] is None
    stamps = [o["created_at"] for o in first["results"] + second["results"]]
    assert stamps == sorted(stamps, reverse=True)
    assert [o["bot"] for o in first["results"] + second["results"]] == [b.pk for b in reversed(bots)]
    assert api.get("/api/orders/?page=9").status_code == 404


def test_exchange_account_keys_are_write_only_and_encrypted(api, user):
    created = api.post(
        "/api/exchange-accounts/",
        {
            "exchange": "Binance",
            "label": "main",
            "api_key": "key-123456",
            "api_secret": "secret-abcdef",
            "testnet": True,
        },
        format="json",
    )

    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["exchange"] == "binance" and body["has_api_key"] and body["has_api_secret"]
    assert not body["has_passphrase"]
    for leaked in ("api_key", "api_secret", "passphrase"):
        assert leaked not in body
    assert "key-123456" not in str(api.get("/api/exchange-accounts/").content)
    assert "secret-abcdef" not in str(api.get(f"/api/exchange-accounts/{body['id']}/").content)
    with connection.cursor() as cursor:
        cursor.execute("SELECT api_key, api_secret FROM trading_exchangeaccount WHERE id = %s", [body["id"]])
        raw_key, raw_secret = cursor.fetchone()
    assert "key-123456" not in raw_key and "secret-abcdef" not in raw_secret
    account = ExchangeAccount.objects.get(pk=body["id"])
    assert account.api_key == "key-123456" and account.owner == user

    # Omitting the keys on update keeps them; sending one replaces it.
    api.patch(f"/api/exchange-accounts/{account.pk}/", {"label": "renamed"}, format="json")
    account.refresh_from_db()
    assert account.label == "renamed" and account.api_secret == "secret-abcdef"
    api.patch(f"/api/exchange-accounts/{account.pk}/", {"api_secret": "rotated"}, format="json")
    account.refresh_from_db()
    assert account.api_secret == "rotated"


def test_exchange_account_validation(api):
    bad = api.post("/api/exchange-accounts/", {"exchange": "nowhere", "label": ""}, format="json")

    assert bad.status_code == 400
    assert set(bad.json()["error"]["fields"]) == {"exchange", "label"}


def test_a_testnet_account_needs_an_exchange_with_a_testnet(api):
    # ccxt knows no coinbase sandbox: such an account could never run, so it is refused now, not
    # when a live bot starts on it.
    refused = api.post("/api/exchange-accounts/", {"exchange": "coinbase", "label": "t"}, format="json")
    assert refused.status_code == 400
    assert "coinbase has no testnet" in refused.json()["error"]["fields"]["testnet"][0]
    real = api.post("/api/exchange-accounts/", {"exchange": "coinbase", "label": "r", "testnet": False}, format="json")
    assert real.status_code == 201, real.json()
    back = api.patch(f"/api/exchange-accounts/{real.json()['id']}/", {"testnet": True}, format="json")
    assert back.status_code == 400 and "testnet" in back.json()["error"]["fields"]
    binance = api.post("/api/exchange-accounts/", {"exchange": "binance", "label": "b"}, format="json")
    assert binance.status_code == 201 and binance.json()["testnet"] is True


def test_an_account_in_use_cannot_be_deleted(api, user):
    account = api.post(
        "/api/exchange-accounts/", {"exchange": "coinbase", "label": "live", "testnet": False}, format="json"
    ).json()
    from tests.api.conftest import bot_config

    bot = api.post("/api/bots/", bot_config(mode="live", exchange_account=account["id"]), format="json")
    assert bot.status_code == 201, bot.json()

    response = api.delete(f"/api/exchange-accounts/{account['id']}/")

    assert response.status_code == 409
    assert "alpha" in response.json()["error"]["message"]
    api.delete(f"/api/bots/{bot.json()['id']}/")
    assert api.delete(f"/api/exchange-accounts/{account['id']}/").status_code == 204
