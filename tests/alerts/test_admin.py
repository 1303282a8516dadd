"""The admin for rules, channels and deliveries: the same checks as the API, the secret never shown."""

from __future__ import annotations

import pytest

from alerts.models import AlertRule, Channel
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

SECRET = "whsec-0123456789abcdef"


@pytest.fixture
def admin_client(client):  # type: ignore[no-untyped-def]
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(admin)
    client.user = admin
    return client


def test_a_webhook_to_a_private_address_is_a_form_error_and_the_secret_is_never_rendered(admin_client) -> None:  # type: ignore[no-untyped-def]
    data = {"owner": admin_client.user.pk, "kind": "webhook", "name": "meta", "enabled": "on",
            "url": "http://169.254.169.254/latest/", "secret": SECRET}  # fmt: skip
    page = admin_client.post("/admin/alerts/channel/add/", data)
    assert page.status_code == 200 and "link-local" in page.content.decode()
    data["url"] = "https://hooks.example.com/ta"
    assert admin_client.post("/admin/alerts/channel/add/", data).status_code == 302
    hook = Channel.objects.get(name="meta")
    assert hook.secret == SECRET
    change = admin_client.get(f"/admin/alerts/channel/{hook.pk}/change/").content.decode()
    assert SECRET not in change
    # Saving without typing the secret again keeps it.
    data["name"] = "meta-2"
    assert admin_client.post(f"/admin/alerts/channel/{hook.pk}/change/", data).status_code == 302
    hook.refresh_from_db()
    assert hook.name == "meta-2" and hook.secret == SECRET


def test_a_rule_with_a_bad_threshold_or_another_owners_channel_is_a_form_error(admin_client, user, other_user) -> None:  # type: ignore[no-untyped-def]
    theirs = Channel.objects.get(owner=other_user, kind="in_app")
    data = {"owner": user.pk, "kind": "drawdown", "threshold": "", "severity": "warning", "cooldown_seconds": 60,
            "enabled": "on", "channels": [theirs.pk]}  # fmt: skip
    page = admin_client.post("/admin/alerts/alertrule/add/", data).content.decode()
    assert "required (equity this % below its peak)" in page and "only channels of the rule&#x27;s owner" in page
    before = AlertRule.objects.count()
    data.update(threshold="12", channels=[Channel.objects.get(owner=user, kind="in_app").pk])
    assert admin_client.post("/admin/alerts/alertrule/add/", data).status_code == 302
    assert AlertRule.objects.count() == before + 1


def test_staff_see_only_their_own(client, user, other_user) -> None:  # type: ignore[no-untyped-def]
    staff = UserFactory(username="staffer", is_staff=True)
    from django.contrib.auth.models import Permission

    staff.user_permissions.set(Permission.objects.filter(content_type__app_label="alerts"))
    client.force_login(staff)
    page = client.get("/admin/alerts/alertrule/").content.decode()
    assert "0 alert rules" not in page
    theirs = AlertRule.objects.filter(owner=other_user).first()
    assert theirs is not None
    assert client.get(f"/admin/alerts/alertrule/{theirs.pk}/change/").status_code == 302  # not found → index
