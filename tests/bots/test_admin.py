"""Bots admin: owner scoping, start/pause/stop actions, cycles as a read-only audit record."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from bots.cycle import run_cycle
from bots.models import Bot
from tests.bots.conftest import SLOT, make_bot
from tests.factories import UserFactory
from trading.models import Position

pytestmark = pytest.mark.django_db(transaction=True)

BOT_URL = "/admin/bots/bot/"


def staff_client() -> tuple[Client, Any]:
    user = UserFactory(is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="bots"))
    client = Client()
    client.force_login(user)
    return client, user


def test_staff_see_only_their_own_bots_and_cycles():
    client, user = staff_client()
    mine = make_bot(owner=user, name="mine")
    theirs = make_bot(name="theirs")
    run_cycle(bot_id=mine.pk, slot=SLOT)
    run_cycle(bot_id=theirs.pk, slot=SLOT)
    page = client.get(BOT_URL).content.decode()
    assert "mine" in page and "theirs" not in page
    assert client.get(f"{BOT_URL}{theirs.pk}/change/").status_code == 302  # not found → back to the list
    cycles = client.get("/admin/bots/cycle/").content.decode()
    assert cycles.count("completed") >= 1 and "theirs" not in cycles


def test_actions_start_pause_and_stop():
    client, user = staff_client()
    bot = make_bot(owner=user, start=False)
    client.post(BOT_URL, {"action": "start_bots", "_selected_action": [bot.pk]})
    bot.refresh_from_db()
    assert bot.status == Bot.Status.ACTIVE
    run_cycle(bot_id=bot.pk, slot=SLOT)  # buy_and_hold opens a position
    client.post(BOT_URL, {"action": "pause_bots", "_selected_action": [bot.pk]})
    bot.refresh_from_db()
    assert bot.status == Bot.Status.PAUSED
    response = client.post(BOT_URL, {"action": "stop_bots", "_selected_action": [bot.pk]}, follow=True)
    bot.refresh_from_db()
    assert bot.status == Bot.Status.STOPPED
    assert not Position.objects.filter(bot=bot, status="open").exists()
    assert "closed 1 position(s)" in response.content.decode()
    # Pausing a stopped bot is refused with a message, not an error page.
    response = client.post(BOT_URL, {"action": "pause_bots", "_selected_action": [bot.pk]}, follow=True)
    assert response.status_code == 200 and "cannot go from stopped to paused" in response.content.decode()


def test_cycles_are_read_only():
    client, user = staff_client()
    bot = make_bot(owner=user)
    cycle = run_cycle(bot_id=bot.pk, slot=SLOT)
    page = client.get(f"/admin/bots/cycle/{cycle.pk}/change/")
    assert page.status_code == 200
    body = page.content.decode()
    assert cycle.snapshot_hash in body and "Save" not in body
    assert client.get("/admin/bots/cycle/add/").status_code == 403


def test_the_bot_form_offers_only_the_users_own_accounts_and_themself():
    from tests.factories import ExchangeAccountFactory

    client, user = staff_client()
    other = UserFactory(username="someone-else")
    ExchangeAccountFactory(owner=user, label="my-account")
    ExchangeAccountFactory(owner=other, label="someone-elses-account")
    page = client.get(f"{BOT_URL}add/").content.decode()
    assert "my-account" in page and "someone-elses-account" not in page
    assert f">{user.username}<" in page and ">someone-else<" not in page
