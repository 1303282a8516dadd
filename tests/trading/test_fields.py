"""Exchange keys are encrypted at rest: the database holds Fernet tokens, the model plaintext."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test import override_settings

from tests.factories import ExchangeAccountFactory
from trading.fields import is_unreadable
from trading.models import ExchangeAccount

pytestmark = pytest.mark.django_db

OLD_KEY = "dGVzdC1maWVsZC1lbmNyeXB0aW9uLWtleS0zMi1ieXQ="  # the test settings' key


def raw_columns(account_id: int) -> tuple[str, str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT api_key, api_secret, passphrase FROM trading_exchangeaccount WHERE id = %s", [account_id]
        )
        row = cursor.fetchone()
    assert row is not None
    return row[0], row[1], row[2]


def test_the_database_holds_ciphertext_and_the_model_reads_plaintext() -> None:
    account = ExchangeAccountFactory(api_key="key-123456", api_secret="secret-abcdef", passphrase="pass-xyz")
    api_key, api_secret, passphrase = raw_columns(account.pk)
    for stored, plain in ((api_key, "key-123456"), (api_secret, "secret-abcdef"), (passphrase, "pass-xyz")):
        assert plain not in stored
        # A Fernet token decrypts to the plaintext with the configured key.
        assert Fernet(OLD_KEY.encode()).decrypt(stored.encode()).decode() == plain
    fresh = ExchangeAccount.objects.get(pk=account.pk)
    assert (fresh.api_key, fresh.api_secret, fresh.passphrase) == ("key-123456", "secret-abcdef", "pass-xyz")


def test_same_value_encrypts_differently_each_time() -> None:
    first = ExchangeAccountFactory(api_key="same")
    second = ExchangeAccountFactory(api_key="same")
    assert raw_columns(first.pk)[0] != raw_columns(second.pk)[0]


def test_empty_values_stay_empty() -> None:
    account = ExchangeAccountFactory(api_key="k", api_secret="s", passphrase="")
    assert raw_columns(account.pk)[2] == ""
    assert ExchangeAccount.objects.get(pk=account.pk).passphrase == ""


def test_a_value_no_key_decrypts_reads_as_unreadable_not_as_an_error() -> None:
    account = ExchangeAccountFactory(api_key="key-123456", passphrase="")
    stored = raw_columns(account.pk)[0]
    with override_settings(FIELD_ENCRYPTION_KEYS=[Fernet.generate_key().decode()]):
        fresh = ExchangeAccount.objects.get(pk=account.pk)
        assert is_unreadable(fresh.api_key) and fresh.api_key  # something is stored, only not readable
        assert str(fresh.api_key) == "<unreadable>" and stored not in repr(fresh.api_key)
        assert fresh.unreadable_secrets == ["api_key", "api_secret"]
        # Saved back (another field changed), it stays the same ciphertext: restoring the key recovers it.
        fresh.label = "renamed"
        fresh.full_clean()
        fresh.save()
        assert raw_columns(account.pk)[0] == stored
    assert ExchangeAccount.objects.get(pk=account.pk).api_key == "key-123456"


def test_a_malformed_key_gives_a_clear_error() -> None:
    with override_settings(FIELD_ENCRYPTION_KEYS=["not-a-fernet-key"]):
        with pytest.raises(ImproperlyConfigured, match="url-safe base64 Fernet keys"):
            ExchangeAccountFactory(api_key="key-123456")


def test_keys_can_be_rotated() -> None:
    account = ExchangeAccountFactory(api_key="key-123456")
    new_key = Fernet.generate_key().decode()
    # New key first (encrypts), old key second (still decrypts the existing rows).
    with override_settings(FIELD_ENCRYPTION_KEYS=[new_key, OLD_KEY]):
        rotated = ExchangeAccount.objects.get(pk=account.pk)
        assert rotated.api_key == "key-123456"
        rotated.save()
        assert Fernet(new_key.encode()).decrypt(raw_columns(account.pk)[0].encode()) == b"key-123456"
    # Re-saved with the new key: readable without the old one.
    with override_settings(FIELD_ENCRYPTION_KEYS=[new_key]):
        assert ExchangeAccount.objects.get(pk=account.pk).api_key == "key-123456"


def test_keys_never_appear_in_repr_or_str() -> None:
    account = ExchangeAccountFactory(api_key="key-123456", api_secret="secret-abcdef")
    for text in (repr(account), str(account)):
        assert "key-123456" not in text and "secret-abcdef" not in text
