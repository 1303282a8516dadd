"""The books in the admin, tried as an attacker would with a superuser's session: every book is
read-only (no add, change, delete or bulk action), a bot or a user with books is not deleted, and a
correction is a new adjustment with who and why."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from bots.cycle import run_cycle
from bots.models import Bot, Cycle, LLMCall
from bots.services import bot_stop
from tests.factories import SLOT, BotFactory, UserFactory
from trading.models import AccountAdjustment, EquitySnapshot, Fill, Order, Position, TradingAccount

pytestmark = pytest.mark.django_db

BOOKS = {
    "trading/order": Order,
    "trading/fill": Fill,
    "trading/position": Position,
    "trading/equitysnapshot": EquitySnapshot,
    "trading/accountadjustment": AccountAdjustment,
    "bots/cycle": Cycle,
    "bots/llmcall": LLMCall,
}


@pytest.fixture
def superuser() -> Any:
    return UserFactory(is_staff=True, is_superuser=True)


@pytest.fixture
def admin(superuser: Any) -> Client:
    client = Client()
    client.force_login(superuser)
    return client


@pytest.fixture
def traded(superuser: Any) -> Bot:
    """A bot with every kind of book: a closed position (stopped), an LLM call, an adjustment."""
    bot = BotFactory(model="buy_and_hold", start=True)
    assert run_cycle(bot_id=bot.pk, slot=SLOT).status == "completed"
    bot_stop(bot=bot)
    LLMCall.objects.create(bot=bot, cycle=Cycle.objects.get(bot=bot), provider="openai", model="m")
    from trading.services import account_adjust

    account_adjust(bot_id=bot.pk, amount=Decimal(1), reason="exchange refunded a fee", user_id=superuser.pk)
    return bot


@pytest.mark.parametrize("path", list(BOOKS))
def test_every_book_is_read_only_in_the_admin(admin: Client, traded: Bot, path: str) -> None:
    model = BOOKS[path]
    row = model.objects.filter(bot=traded).first()
    before = model.objects.count()
    url = f"/admin/{path}/"

    listing = admin.get(url)
    assert listing.status_code == 200
    page = listing.content.decode()
    assert "delete_selected" not in page and 'name="action"' not in page  # no bulk action at all
    # A forged bulk delete does nothing.
    admin.post(url, {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"})
    assert model.objects.count() == before

    detail = admin.get(f"{url}{row.pk}/change/")
    assert detail.status_code == 200  # shown, with its audit fields
    assert 'name="_save"' not in detail.content.decode() and "/delete/" not in detail.content.decode()
    assert admin.get(f"{url}{row.pk}/delete/").status_code == 403
    assert admin.post(f"{url}{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert admin.post(f"{url}{row.pk}/change/", {}).status_code == 403
    assert model.objects.count() == before
    if path != "trading/accountadjustment":
        assert admin.get(f"{url}add/").status_code == 403


def test_the_audit_fields_are_shown(admin: Client, traded: Bot) -> None:
    order = Order.objects.filter(bot=traded).first()
    page = admin.get(f"/admin/trading/order/{order.pk}/change/").content.decode()
    for label in ("Created at", "Submitted at", "Updated at", "Client order id"):
        assert label in page


def test_a_bot_with_books_is_not_deleted_from_the_admin(admin: Client, traded: Bot) -> None:
    response = admin.post(f"/admin/bots/bot/{traded.pk}/delete/", {"post": "yes"}, follow=True)
    assert "was not deleted: it has a trading history (1 cycle, 2 orders, " in response.content.decode()
    assert Bot.objects.filter(pk=traded.pk).exists() and Fill.objects.filter(bot=traded).count() == 2


def test_a_user_with_books_is_not_deleted_from_the_admin(admin: Client, traded: Bot) -> None:
    owner = traded.owner
    url = "/admin/auth/user/"
    response = admin.post(f"{url}{owner.pk}/delete/", {"post": "yes"}, follow=True)
    assert "was not deleted: their bots have trading history" in response.content.decode()
    response = admin.post(
        url, {"action": "delete_selected_users", "_selected_action": [owner.pk], "post": "yes"}, follow=True
    )
    assert "Nothing was deleted" in response.content.decode()
    assert "delete_selected" not in admin.get(url).content.decode().replace("delete_selected_users", "")
    assert get_user_model().objects.filter(pk=owner.pk).exists()
    assert Order.objects.filter(bot=traded).count() == 2

    # A user without books goes (with their bots that never ran).
    idle = UserFactory()
    BotFactory(owner=idle, model="hold")
    admin.post(url, {"action": "delete_selected_users", "_selected_action": [idle.pk], "post": "yes"})
    assert not get_user_model().objects.filter(pk=idle.pk).exists()


def test_a_correction_is_a_new_adjustment_with_who_and_why(admin: Client, superuser: Any, traded: Bot) -> None:
    cash = TradingAccount.objects.get(pk=traded.pk).cash
    url = "/admin/trading/accountadjustment/add/"
    short = admin.post(url, {"bot": traded.pk, "amount": "-2.5", "reason": "fee"})
    assert "at least 10 characters" in short.content.decode()
    admin.post(url, {"bot": traded.pk, "amount": "-2.5", "reason": "the exchange charged a fee we did not book"})
    entry = AccountAdjustment.objects.filter(bot=traded).order_by("-created_at").first()
    assert entry.amount == Decimal("-2.5") and entry.created_by == superuser
    assert entry.cash_after == cash - Decimal("2.5") == TradingAccount.objects.get(pk=traded.pk).cash
    listing = admin.get("/admin/trading/accountadjustment/").content.decode()
    assert "-2.500000000000 USD" in listing and "the exchange charged a fee" in listing
    # More than the free cash is refused, nothing moves.
    response = admin.post(
        url, {"bot": traded.pk, "amount": "-99999999", "reason": "a typo that would wipe the account"}, follow=True
    )
    assert "Not adjusted: The account has" in response.content.decode()
    assert TradingAccount.objects.get(pk=traded.pk).cash == entry.cash_after


def test_only_a_superuser_adds_adjustments(traded: Bot) -> None:
    from django.contrib.auth.models import Permission

    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(content_type__app_label="trading"))
    client = Client()
    client.force_login(staff)
    assert client.get("/admin/trading/accountadjustment/add/").status_code == 403
