"""Round trips in the API: per bot and across the user's bots, filtered, paginated, and as CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bots.models import Bot, Cycle
from tests.books import books_unguarded
from tests.factories import BotFactory
from trading.models import Fill, Order, Position

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
MARKET = datetime(2019, 1, 7, 0, 0, tzinfo=UTC)


def round_trip(
    bot: Bot, n: int, *, side: str, pnl: str, fees: tuple[str, str], reason: str, thesis: str = ""
) -> Position:
    opened, closed = T0 + timedelta(hours=2 * n), T0 + timedelta(hours=2 * n + 1)
    cycle = Cycle.objects.create(bot=bot, slot=opened, started_at=opened, status="completed")
    position = Position.objects.create(
        bot=bot,
        symbol="BTC/USD",
        side=side,
        status="closed",
        quantity=Decimal("0.5"),
        entry_price=Decimal(4000),
        exit_price=Decimal(4100),
        leverage=Decimal(2),
        margin=Decimal(1000),
        realized_pnl=Decimal(pnl),
        fees=Decimal(fees[0]) + Decimal(fees[1]),
        close_reason=reason,
        thesis=thesis,
        invalidation="a close below 3900",
        confidence=Decimal("0.65"),
        opened_at=opened,
        closed_at=closed,
        opened_cycle=cycle,
    )
    for leg, (intent, fee, market_time) in enumerate(
        [("open", fees[0], MARKET + timedelta(hours=5 * n)), ("close", fees[1], MARKET + timedelta(hours=5 * n + 3))]
    ):
        order = Order.objects.create(
            bot=bot,
            position=position,
            client_order_id=f"rt-{bot.pk}-{n}-{leg}",
            symbol="BTC/USD",
            side="buy",
            intent=intent,
            quantity=Decimal("0.5"),
            status="filled",
        )
        Fill.objects.create(
            order=order,
            bot=bot,
            symbol="BTC/USD",
            side="buy",
            quantity=Decimal("0.5"),
            price=Decimal(4000),
            fee=Decimal(fee),
            market_time=market_time,
        )
    return position


@pytest.fixture
def trips(user, other_user):
    alpha = BotFactory(owner=user, name="alpha")
    beta = BotFactory(owner=user, name="beta")
    round_trip(alpha, 0, side="long", pnl="50", fees=("2", "2.5"), reason="decision", thesis="Breakout above 4000.")
    round_trip(alpha, 1, side="short", pnl="-30", fees=("2", "2"), reason="stop_loss")
    round_trip(beta, 2, side="long", pnl="10", fees=("1", "1"), reason="bot_stopped")
    # Open positions are not round trips; other users' round trips are not listed.
    Position.objects.create(
        bot=alpha,
        symbol="ETH/USD",
        side="long",
        quantity=Decimal(1),
        entry_price=Decimal(100),
        margin=Decimal(100),
        opened_at=T0,
    )
    round_trip(BotFactory(owner=other_user, name="theirs"), 3, side="long", pnl="5", fees=("1", "1"), reason="decision")
    return alpha, beta


def test_a_bots_round_trips(api, trips):
    alpha, _ = trips

    page = api.get(f"/api/bots/{alpha.pk}/round-trips/").json()

    assert page["count"] == 2
    newest, first = page["results"]
    assert newest["exit_reason"] == "stop_loss" and newest["side"] == "short"
    assert first["exit_reason"] == "signal" and first["thesis"] == "Breakout above 4000."
    assert first["invalidation"] == "a close below 3900" and first["quote_currency"] == "USD"
    assert Decimal(first["gross_pnl"]) == 50 and Decimal(first["fees"]) == Decimal("4.5")
    assert Decimal(first["net_pnl"]) == Decimal("45.5") and Decimal(first["return_pct"]) == Decimal("4.55")
    # Held one hour of wall clock, three of market time.
    assert first["holding_seconds"] == 3600 and first["holding_market_seconds"] == 3 * 3600
    assert (
        first["opened_market_time"] == "2019-01-07T00:00:00Z" and first["closed_market_time"] == "2019-01-07T03:00:00Z"
    )


def test_all_round_trips_filtered_and_paginated(api, trips):
    alpha, beta = trips

    everything = api.get("/api/round-trips/").json()
    assert everything["count"] == 3  # not the other user's
    assert [r["bot_id"] for r in everything["results"]] == [beta.pk, alpha.pk, alpha.pk]
    assert api.get("/api/round-trips/?exit_reason=stop_command").json()["count"] == 1
    assert api.get("/api/round-trips/?side=long&bot=" + str(alpha.pk)).json()["count"] == 1
    assert api.get("/api/round-trips/?page_size=2").json()["next"] is not None
    assert api.get("/api/round-trips/?exit_reason=lucky").status_code == 400


def test_another_users_bot_is_refused(api, other_api, trips):
    alpha, _ = trips
    response = other_api.get(f"/api/round-trips/?bot={alpha.pk}")
    assert response.status_code == 400 and "bot" in response.json()["error"]["fields"]
    assert other_api.get(f"/api/bots/{alpha.pk}/round-trips/").status_code == 404


def _csv(response) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def test_csv_export(api, trips):
    alpha, _ = trips
    with books_unguarded():  # a closed position is final: the thesis it had is rewritten for the test
        Position.objects.filter(bot=alpha, close_reason="stop_loss").update(thesis='=HYPERLINK("http://x")')

    rows = _csv(api.get("/api/round-trips/?format=csv&page_size=1"))
    assert len(rows) == 3  # every matching row, not a page
    assert {r["exit_reason"] for r in rows} == {"signal", "stop_loss", "stop_command"}
    assert "thesis" in rows[0] and "net_pnl" in rows[0]
    # A thesis a spreadsheet would run as a formula is written as text.
    assert any(r["thesis"].startswith("'=HYPERLINK") for r in rows)
    # A negative amount stays a number.
    assert any(r["net_pnl"].startswith("-34") for r in rows)

    bot_rows = _csv(api.get(f"/api/bots/{alpha.pk}/round-trips/", HTTP_ACCEPT="text/csv"))
    assert len(bot_rows) == 2
    response = api.get(f"/api/bots/{alpha.pk}/round-trips/?format=csv")
    assert f'filename="round-trips-bot-{alpha.pk}.csv"' in response["Content-Disposition"]
