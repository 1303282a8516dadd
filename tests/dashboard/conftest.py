"""Fixtures of the dashboard tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.api.conftest import clear_throttles


@pytest.fixture(autouse=True)
def _fresh_throttles() -> Iterator[None]:
    # The login page counts attempts per address (shared with the API's logins, kept in Redis).
    clear_throttles()
    yield
    clear_throttles()
