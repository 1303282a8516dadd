"""Shared test fixtures. Each test module keeps its own data; these are only the basics."""

from __future__ import annotations

from typing import Any

import pytest

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
