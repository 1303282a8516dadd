"""Key rotation (`manage.py rotate_encryption_keys`) and rows no key can decrypt (API, admin, broker)."""

from __future__ import annotations

from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client, override_settings
from rest_framework.test import APIClient

from tests.factories import ExchangeAccountFactory, UserFactory
from tests.trading.test_fields import OLD_KEY, raw_columns
from trading.brokers import broker_for_account
from trading.brokers.base import PermanentBrokerError
from trading.models import ExchangeAccount

pytestmark = pytest.mark.django_db

NEW_KEY = Fernet.generate_key().decode()


def rotate(*args: str) -> str:
    out = StringIO()
    call_command("rotate_encryption_keys", *args, stdout=out)
    return out.getvalue()


def test_rotation_reencrypts_every_secret_with_the_first_key_and_is_idempotent() -> None:
    accounts = [ExchangeAccountFactory(api_key=f"key-{i}", api_secret=f"secret-{i}", passphrase="") for i in range(3)]

    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY, OLD_KEY]):
        assert "would re-encrypt 6," in rotate("--dry-run")
        assert Fernet(OLD_KEY.encode()).decrypt(raw_columns(accounts[0].pk)[0].encode()) == b"key-0"

        first = rotate()
        assert "trading.ExchangeAccount.api_key: 3 re-encrypted, 0 already on the first key" in first
        assert "re-encrypted 6, 0 already on the first key, 0 changed meanwhile, 0 unreadable" in first
        second = rotate()
        assert "re-encrypted 0, 6 already on the first key" in second

    # The old key can go: every secret reads with the new one alone.
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY]):
        for i, account in enumerate(accounts):
            fresh = ExchangeAccount.objects.get(pk=account.pk)
            assert (fresh.api_key, fresh.api_secret, fresh.passphrase) == (f"key-{i}", f"secret-{i}", "")
            assert Fernet(NEW_KEY.encode()).decrypt(raw_columns(account.pk)[1].encode()) == f"secret-{i}".encode()


def test_rotation_reports_values_no_key_decrypts_and_exits_1() -> None:
    readable = ExchangeAccountFactory(api_key="key-ok", api_secret="", passphrase="")
    lost = ExchangeAccountFactory(api_key="key-lost", api_secret="", passphrase="")
    # Written with a key nobody has any more.
    lost_cipher = Fernet(Fernet.generate_key()).encrypt(b"key-lost").decode()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE trading_exchangeaccount SET api_key = %s WHERE id = %s", [lost_cipher, lost.pk])

    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY, OLD_KEY]), pytest.raises(CommandError) as failed:
        rotate()

    assert f"trading.ExchangeAccount id={lost.pk} api_key" in str(failed.value)
    assert "Do not retire any key yet" in str(failed.value)
    assert raw_columns(lost.pk)[0] == lost_cipher  # left as it was
    # The readable one was still rotated.
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY]):
        assert ExchangeAccount.objects.get(pk=readable.pk).api_key == "key-ok"


@pytest.fixture
def unreadable_account(user):  # type: ignore[no-untyped-def]
    ExchangeAccountFactory(owner=user, label="fine", api_key="key-fine")
    account = ExchangeAccountFactory(owner=user, label="lost", api_key="key-lost", api_secret="secret-lost")
    stored = raw_columns(account.pk)
    # Re-encrypt `fine` with the key the test will use, so only `lost` is unreadable under it.
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY, OLD_KEY]):
        ExchangeAccount.objects.get(label="fine").save()
    return account, stored


def test_an_unreadable_row_does_not_break_the_api(user, unreadable_account) -> None:
    account, stored = unreadable_account
    api = APIClient()
    api.force_authenticate(user)
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY]):
        listed = api.get("/api/exchange-accounts/")
        assert listed.status_code == 200
        rows = {row["label"]: row for row in listed.json()["results"]}
        assert rows["fine"]["keys_readable"] is True
        assert rows["lost"]["keys_readable"] is False and rows["lost"]["has_api_key"] is True
        assert "unreadable" not in str(rows["fine"]) and stored[0] not in listed.content.decode()
        assert api.get(f"/api/exchange-accounts/{account.pk}/").status_code == 200

        # Changing the label keeps the ciphertext; entering the key again makes it readable.
        assert (
            api.patch(f"/api/exchange-accounts/{account.pk}/", {"label": "renamed"}, format="json").status_code == 200
        )
        assert raw_columns(account.pk)[0] == stored[0]
        again = api.patch(f"/api/exchange-accounts/{account.pk}/", {"api_key": "k2", "api_secret": "s2"}, format="json")
        assert again.status_code == 200 and again.json()["keys_readable"] is True
        assert ExchangeAccount.objects.get(pk=account.pk).api_key == "k2"


def test_an_unreadable_row_does_not_break_the_admin(unreadable_account) -> None:
    account, stored = unreadable_account
    admin = UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin)
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY]):
        listing = client.get("/admin/trading/exchangeaccount/")
        assert listing.status_code == 200 and "UNREADABLE: key, secret" in listing.content.decode()
        page = client.get(f"/admin/trading/exchangeaccount/{account.pk}/change/")
        assert page.status_code == 200 and "UNREADABLE" in page.content.decode()
        assert stored[0] not in page.content.decode()
        saved = client.post(
            f"/admin/trading/exchangeaccount/{account.pk}/change/",
            {"owner": str(account.owner_id), "exchange": "binance", "label": "renamed", "testnet": "on"},
        )
        assert saved.status_code == 302, saved.content.decode()[:3000]
        assert raw_columns(account.pk)[:2] == stored[:2]  # kept, not overwritten with a placeholder


def test_a_broker_refuses_keys_it_cannot_decrypt(unreadable_account) -> None:
    account, _ = unreadable_account
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY]):
        with pytest.raises(PermanentBrokerError, match="cannot be decrypted"):
            broker_for_account(ExchangeAccount.objects.get(pk=account.pk))
