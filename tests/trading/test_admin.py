"""Trading admin: owner scoping, read-only audit records, write-only exchange keys."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from tests.factories import BotFactory, ExchangeAccountFactory, UserFactory
from trading.models import ExchangeAccount, Order

pytestmark = pytest.mark.django_db

ACCOUNT_URL = "/admin/trading/exchangeaccount/"
ORDER_URL = "/admin/trading/order/"


def staff_client(**user_fields: Any) -> tuple[Client, Any]:
    user = UserFactory(is_staff=True, **user_fields)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="trading"))
    client = Client()
    client.force_login(user)
    return client, user


def order_for(owner: Any, client_order_id: str) -> Order:
    bot = BotFactory(owner=owner)
    return Order.objects.create(
        bot=bot,
        client_order_id=client_order_id,
        symbol="BTC/USD",
        side=Order.Side.BUY,
        intent=Order.Intent.OPEN,
        quantity=Decimal("0.1"),
    )


def account_form(account: ExchangeAccount, **changes: str) -> dict[str, str]:
    data = {
        "exchange": account.exchange,
        "label": account.label,
        "testnet": "on" if account.testnet else "",
        "api_key": "",
        "api_secret": "",
        "passphrase": "",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v != ""}


def test_staff_see_only_their_own_rows() -> None:
    client, user = staff_client()
    other = UserFactory()
    mine = order_for(user, "ta-mine-o0")
    theirs = order_for(other, "ta-theirs-o0")
    own_account = ExchangeAccountFactory(owner=user, label="mine")
    other_account = ExchangeAccountFactory(owner=other, label="theirs")

    page = client.get(ORDER_URL)
    assert page.status_code == 200
    assert mine.client_order_id in page.content.decode() and theirs.client_order_id not in page.content.decode()
    assert client.get(f"{ORDER_URL}{mine.pk}/change/").status_code == 200
    # Someone else's row does not exist for this user.
    assert client.get(f"{ORDER_URL}{theirs.pk}/change/").status_code == 302
    assert client.get(f"{ACCOUNT_URL}{other_account.pk}/change/").status_code == 302
    accounts = client.get(ACCOUNT_URL).content.decode()
    assert own_account.label in accounts and "theirs" not in accounts


def test_superusers_see_every_row() -> None:
    admin = UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin)
    first = order_for(UserFactory(), "ta-a-o0")
    second = order_for(UserFactory(), "ta-b-o0")
    content = client.get(ORDER_URL).content.decode()
    assert first.client_order_id in content and second.client_order_id in content


def test_orders_are_read_only() -> None:
    client, user = staff_client()
    order = order_for(user, "ta-ro-o0")
    page = client.get(f"{ORDER_URL}{order.pk}/change/").content.decode()
    assert 'name="_save"' not in page
    assert client.post(f"{ORDER_URL}{order.pk}/change/", {"status": "filled"}).status_code == 403
    order.refresh_from_db()
    assert order.status == Order.Status.PENDING_SUBMIT
    assert client.get(f"{ORDER_URL}add/").status_code == 403


def test_keys_are_never_rendered() -> None:
    client, user = staff_client()
    account = ExchangeAccountFactory(owner=user, api_key="live-key-123456", api_secret="live-secret-abcdef")
    page = client.get(f"{ACCOUNT_URL}{account.pk}/change/").content.decode()
    assert "live-key-123456" not in page and "live-secret-abcdef" not in page
    assert 'type="password" name="api_key"' in page
    assert "key, secret stored" in page  # whether keys are stored, not what they are


def test_blank_keeps_the_stored_key_and_a_new_value_replaces_it() -> None:
    client, user = staff_client()
    account = ExchangeAccountFactory(owner=user, api_key="old-key", api_secret="old-secret", testnet=True)

    response = client.post(f"{ACCOUNT_URL}{account.pk}/change/", account_form(account, label="renamed"))
    assert response.status_code == 302, response.content.decode()[:2000]
    account.refresh_from_db()
    assert (account.label, account.api_key, account.api_secret) == ("renamed", "old-key", "old-secret")

    client.post(f"{ACCOUNT_URL}{account.pk}/change/", account_form(account, api_key="new-key"))
    account.refresh_from_db()
    assert (account.api_key, account.api_secret) == ("new-key", "old-secret")

    client.post(f"{ACCOUNT_URL}{account.pk}/change/", account_form(account, clear_keys="on"))
    account.refresh_from_db()
    assert (account.api_key, account.api_secret, account.passphrase) == ("", "", "")


def test_staff_create_accounts_for_themselves() -> None:
    client, user = staff_client()
    other = UserFactory()
    data = {"exchange": "binance", "label": "main", "testnet": "on", "api_key": "k-1", "api_secret": "s-1"}
    response = client.post(f"{ACCOUNT_URL}add/", {**data, "owner": str(other.pk)})
    assert response.status_code == 302
    account = ExchangeAccount.objects.get(label="main")
    assert account.owner == user and account.api_key == "k-1" and account.api_secret == "s-1"

    duplicate = client.post(f"{ACCOUNT_URL}add/", data)
    assert duplicate.status_code == 200
    assert "already have an exchange account with this label" in duplicate.content.decode()
    assert ExchangeAccount.objects.filter(owner=user).count() == 1


def test_a_testnet_account_on_an_exchange_without_one_is_a_form_error() -> None:
    client, user = staff_client()
    data = {"exchange": "coinbase", "label": "cb", "testnet": "on", "api_key": "k-1", "api_secret": "s-1"}
    response = client.post(f"{ACCOUNT_URL}add/", data)
    assert response.status_code == 200
    assert "coinbase has no testnet/sandbox in ccxt" in response.content.decode()
    assert not ExchangeAccount.objects.filter(label="cb").exists()
