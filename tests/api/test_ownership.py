"""The ownership matrix: another user's bot, cycle, position, order, fill, account and alert are
invisible (404, never 403), cannot be changed or controlled, and never appear in a list."""

from __future__ import annotations

import pytest

from alerts.models import Alert
from alerts.services import alert_raise
from bots.models import Bot, Cycle
from tests.factories import ExchangeAccountFactory
from trading.models import ExchangeAccount, Fill, Order, Position

pytestmark = pytest.mark.django_db


@pytest.fixture
def owned(user, traded_bot):
    """Alice's rows of every kind."""
    return {
        "bots": traded_bot.pk,
        "cycles": Cycle.objects.get(bot=traded_bot).pk,
        "positions": Position.objects.get(bot=traded_bot).pk,
        "orders": Order.objects.get(bot=traded_bot).pk,
        "fills": Fill.objects.get(bot=traded_bot).pk,
        "exchange-accounts": ExchangeAccountFactory(owner=user).pk,
        "alerts": alert_raise(owner_id=user.pk, bot_id=traded_bot.pk, kind="trade", message="bought").pk,
    }


RESOURCES = ["bots", "cycles", "positions", "orders", "fills", "exchange-accounts", "alerts"]


@pytest.mark.parametrize("resource", RESOURCES)
def test_read(api, other_api, owned, resource):
    url = f"/api/{resource}/{owned[resource]}/"

    assert api.get(url).status_code == 200
    assert other_api.get(url).status_code == 404
    listed = other_api.get(f"/api/{resource}/?status=all" if resource == "positions" else f"/api/{resource}/")
    assert listed.status_code == 200 and listed.json()["count"] == 0


@pytest.mark.parametrize(
    ("resource", "change"),
    [("bots", {"name": "stolen"}), ("exchange-accounts", {"label": "stolen"}), ("alerts", {"read": True})],
)
def test_update_and_delete(other_api, owned, resource, change):
    url = f"/api/{resource}/{owned[resource]}/"

    assert other_api.patch(url, change, format="json").status_code == 404
    assert other_api.put(url, change, format="json").status_code == 404
    assert other_api.delete(url).status_code in (404, 405)
    assert Bot.objects.get(pk=owned["bots"]).name == "trader"
    assert ExchangeAccount.objects.filter(pk=owned["exchange-accounts"]).exclude(label="stolen").exists()
    assert not Alert.objects.get(pk=owned["alerts"]).read


@pytest.mark.parametrize("command", ["start", "pause", "stop"])
def test_control(other_api, owned, command):
    before = Bot.objects.get(pk=owned["bots"]).status

    response = other_api.post(f"/api/bots/{owned['bots']}/{command}/", {}, format="json")

    assert response.status_code == 404
    assert Bot.objects.get(pk=owned["bots"]).status == before == "active"
    assert Position.objects.get(pk=owned["positions"]).status == "open"


@pytest.mark.parametrize("view", ["performance", "candles"])
def test_bot_figures(other_api, owned, view):
    assert other_api.get(f"/api/bots/{owned['bots']}/{view}/").status_code == 404


def test_marking_another_users_alert_read(other_api, owned):
    assert other_api.post(f"/api/alerts/{owned['alerts']}/read/").status_code == 404
    assert other_api.post("/api/alerts/read-all/", {"ids": [owned["alerts"]]}, format="json").json() == {"updated": 0}
    assert not Alert.objects.get(pk=owned["alerts"]).read


@pytest.mark.parametrize("resource", ["cycles", "positions", "orders", "fills", "alerts"])
def test_filtering_by_another_users_bot(other_api, owned, resource):
    response = other_api.get(f"/api/{resource}/?bot={owned['bots']}")

    assert response.status_code == 400
    assert "bot" in response.json()["error"]["fields"]


def test_leaderboard_and_performance_stay_private(other_api, owned):
    board = other_api.get("/api/leaderboard/").json()
    assert board["rows"] == [] and board["not_started"] == [] and board["models"] == []
    assert other_api.get("/api/analytics/").json()["bots"] == []
    assert other_api.get("/api/arena/").json() == []
    assert other_api.get("/api/round-trips/").json()["results"] == []
    assert other_api.get(f"/api/bots/{owned['bots']}/round-trips/").status_code == 404
