"""A model field that stores text encrypted with Fernet (AES-128-CBC + HMAC-SHA256).

Keys come from FIELD_ENCRYPTION_KEY (comma-separated; the first encrypts, every key decrypts, so
keys can be rotated: `manage.py rotate_encryption_keys` re-encrypts every stored secret with the
first key, after which the others can be retired). The database only ever sees ciphertext.

A stored value that no configured key decrypts (its key was retired too early, or the row came
from another deployment) reads as an `UnreadableSecret`, not an error: one such row must not take
down every page that lists accounts. It is truthy (something is stored), unusable as a key (the
brokers refuse it), and saved back unchanged, so restoring the key recovers it.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

logger = logging.getLogger(__name__)


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEY must hold url-safe base64 Fernet keys (32 bytes each)"
        ) from None


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def current_fernet() -> Fernet:
    """The key that encrypts: the first of FIELD_ENCRYPTION_KEY."""
    fernet()  # validates every key with a clear message
    return Fernet(settings.FIELD_ENCRYPTION_KEYS[0].encode())


class Ciphertext(str):
    """A Fernet token written to the column as it is (key rotation, an unreadable value kept)."""


class UnreadableSecret:
    """A stored secret that no key of FIELD_ENCRYPTION_KEY decrypts. Never shows the ciphertext."""

    __slots__ = ("ciphertext",)

    def __init__(self, ciphertext: str) -> None:
        self.ciphertext = ciphertext

    def __bool__(self) -> bool:
        return True  # a secret is stored, only not readable

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UnreadableSecret) and other.ciphertext == self.ciphertext

    def __hash__(self) -> int:
        return hash(self.ciphertext)

    def __str__(self) -> str:
        return "<unreadable>"

    __repr__ = __str__


def is_unreadable(value: Any) -> bool:
    return isinstance(value, UnreadableSecret)


class EncryptedTextField(models.TextField):
    description = "Text encrypted at rest with Fernet"

    def to_python(self, value: Any) -> Any:
        # Model.full_clean (admin and API forms) must not turn an unreadable secret into text.
        if isinstance(value, UnreadableSecret):
            return value
        return super().to_python(value)

    def get_prep_value(self, value: Any) -> Any:
        if isinstance(value, UnreadableSecret):
            return value.ciphertext  # kept as it was: restoring its key recovers it
        if isinstance(value, Ciphertext):
            return str(value)
        value = super().get_prep_value(value)
        if value in (None, ""):
            return value
        return fernet().encrypt(str(value).encode()).decode()

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value in (None, ""):
            return value
        try:
            return fernet().decrypt(value.encode()).decode()
        except InvalidToken:
            logger.warning(
                "a stored %s could not be decrypted: FIELD_ENCRYPTION_KEY does not hold the key it was written with",
                self.name,
            )
            return UnreadableSecret(value)
