"""Shared test fixtures. Each test module keeps its own data; these are only the basics."""

from __future__ import annotations

import pytest


@pytest.fixture
def user(django_user_model):  # type: ignore[no-untyped-def]
    return django_user_model.objects.create_user(username="alice", email="alice@example.com", password="pw-alice-123")


@pytest.fixture
def other_user(django_user_model):  # type: ignore[no-untyped-def]
    return django_user_model.objects.create_user(username="bob", email="bob@example.com", password="pw-bob-123")
