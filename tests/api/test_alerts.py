"""Alerts API: list and filter, mark one or all read; nothing else about an alert can change."""

from __future__ import annotations

import pytest

from alerts.models import Alert
from alerts.services import alert_raise
from tests.factories import BotFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def alerts(user, other_user):
    bot = BotFactory(owner=user)
    return {
        "trade": alert_raise(owner_id=user.pk, bot_id=bot.pk, kind="trade", message="bought BTC"),
        "risk": alert_raise(owner_id=user.pk, bot_id=bot.pk, kind="risk", severity="critical", message="drawdown"),
        "system": alert_raise(owner_id=user.pk, kind="system", message="hello"),
        "foreign": alert_raise(owner_id=other_user.pk, kind="system", message="not yours"),
    }


def test_list_newest_first_and_only_mine(api, alerts):
    rows = api.get("/api/alerts/").json()["results"]

    assert [r["message"] for r in rows] == ["hello", "drawdown", "bought BTC"]


def test_filters(api, alerts):
    def messages(query: str) -> list[str]:
        return [r["message"] for r in api.get(f"/api/alerts/?{query}").json()["results"]]

    assert messages("kind=risk") == ["drawdown"]
    assert messages("severity=critical") == ["drawdown"]
    assert messages(f"bot={alerts['trade'].bot_id}") == ["drawdown", "bought BTC"]
    Alert.objects.filter(pk=alerts["system"].pk).update(read=True)
    assert messages("read=false") == ["drawdown", "bought BTC"]
    assert messages("read=true") == ["hello"]
    # 1/0 mean the same; anything else is refused rather than ignored (every alert).
    assert messages("read=0") == ["drawdown", "bought BTC"] and messages("read=1") == ["hello"]
    bad = api.get("/api/alerts/?read=maybe")
    assert bad.status_code == 400 and "read" in bad.json()["error"]["fields"]


def test_mark_one_read(api, alerts):
    response = api.post(f"/api/alerts/{alerts['trade'].pk}/read/")

    assert response.status_code == 200 and response.json()["read"] is True
    assert Alert.objects.get(pk=alerts["trade"].pk).read


def test_patch_changes_only_read(api, alerts):
    alert = alerts["risk"]
    response = api.patch(
        f"/api/alerts/{alert.pk}/", {"read": True, "message": "edited", "severity": "info"}, format="json"
    )

    assert response.status_code == 200
    alert.refresh_from_db()
    assert alert.read and alert.message == "drawdown" and alert.severity == "critical"


def test_mark_all_or_some_read(api, alerts):
    some = api.post("/api/alerts/read-all/", {"ids": [alerts["trade"].pk, alerts["foreign"].pk]}, format="json")
    assert some.json() == {"updated": 1}
    assert not Alert.objects.get(pk=alerts["foreign"].pk).read

    rest = api.post("/api/alerts/read-all/", {}, format="json")
    assert rest.json() == {"updated": 2}
    assert Alert.objects.filter(owner=alerts["trade"].owner, read=False).count() == 0
    assert not Alert.objects.get(pk=alerts["foreign"].pk).read


def test_alerts_cannot_be_created_or_deleted_through_the_api(api, alerts):
    assert api.post("/api/alerts/", {"message": "x", "kind": "system"}, format="json").status_code == 405
    assert api.delete(f"/api/alerts/{alerts['trade'].pk}/").status_code == 405
