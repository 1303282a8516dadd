"""Fixtures shared by the whole suite. Each test module keeps its own data; these are the basics.

Builders of rows (bots, users, accounts) are in tests/factories.py, local protocol servers build
on tests/protocol_server.py, the fake clock is tests/clock.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.conf import settings

from bots.llm.base import LLMDecisionMaker
from tests.clock import FakeClock


@pytest.fixture
def user(django_user_model):  # type: ignore[no-untyped-def]
    return django_user_model.objects.create_user(username="alice", email="alice@example.com", password="pw-alice-123")


@pytest.fixture
def other_user(django_user_model):  # type: ignore[no-untyped-def]
    return django_user_model.objects.create_user(username="bob", email="bob@example.com", password="pw-bob-123")


@pytest.fixture
def llm_fake_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """Every LLM decision maker made during the test, those a cycle makes too, retries on a fake
    clock: its backoffs are recorded in `delays`, not waited for (see tests/clock.py)."""
    clock = FakeClock()
    real_init = LLMDecisionMaker.__init__

    def init(self: LLMDecisionMaker, **kwargs: Any) -> None:
        kwargs.setdefault("sleep", clock.sleep)
        kwargs.setdefault("clock", clock.monotonic)
        real_init(self, **kwargs)

    monkeypatch.setattr(LLMDecisionMaker, "__init__", init)
    return clock


def _clear_throttles() -> None:
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        keys = list(client.scan_iter(match="ta:*throttle_*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def fresh_throttles() -> Iterator[None]:
    """The API throttles forget their request history before and after the test (their keys only:
    the Redis db is shared with the rest of the run)."""
    _clear_throttles()
    yield
    _clear_throttles()
