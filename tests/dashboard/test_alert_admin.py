"""The alerts admin: staff see only their own alerts (superusers all); what happened is read-only."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from alerts.models import Alert
from alerts.services import alert_raise
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff():
    user = UserFactory(username="staffer", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_alert", "change_alert"]))
    return user


def admin_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_staff_see_their_own_alerts_only(staff, other_user):
    mine = alert_raise(owner_id=staff.pk, kind="system", message="mine")
    theirs = alert_raise(owner_id=other_user.pk, kind="system", message="theirs")
    client = admin_client(staff)

    listing = client.get("/admin/alerts/alert/")
    assert listing.status_code == 200
    assert "mine" in listing.content.decode() and "theirs" not in listing.content.decode()
    assert client.get(f"/admin/alerts/alert/{mine.pk}/change/").status_code == 200
    assert client.get(f"/admin/alerts/alert/{theirs.pk}/change/").status_code == 302  # "does not exist"


def test_superusers_see_every_alert(other_user):
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    alert_raise(owner_id=other_user.pk, kind="system", message="theirs")

    assert "theirs" in admin_client(root).get("/admin/alerts/alert/?q=theirs").content.decode()


def test_only_read_can_change_and_alerts_cannot_be_added(staff):
    alert = alert_raise(owner_id=staff.pk, kind="risk", message="drawdown")
    client = admin_client(staff)

    assert client.get("/admin/alerts/alert/add/").status_code == 403
    client.post(f"/admin/alerts/alert/{alert.pk}/change/", {"read": "on", "message": "edited", "kind": "trade"})
    alert.refresh_from_db()
    assert alert.read and alert.message == "drawdown" and alert.kind == "risk"


def test_mark_read_action(staff):
    alerts = [alert_raise(owner_id=staff.pk, kind="system", message=f"m{i}") for i in range(3)]

    admin_client(staff).post(
        "/admin/alerts/alert/", {"action": "mark_read", "_selected_action": [a.pk for a in alerts[:2]]}
    )

    assert sorted(Alert.objects.filter(read=True).values_list("message", flat=True)) == ["m0", "m1"]
