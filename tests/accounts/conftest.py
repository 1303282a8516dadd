"""Fixtures of the account tests: mails sent at once (the worker's task run in-process on commit),
fresh throttles and lockouts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _fresh_throttles(fresh_throttles: None) -> None:
    """Every account test starts with no request history (tests/conftest.py)."""


@pytest.fixture
def eager_tasks() -> Iterator[None]:
    """Tasks run in-process when enqueued (wrap the request in django_capture_on_commit_callbacks
    with execute=True: mails are enqueued after commit)."""
    from tradingagent.celery import app

    eager, propagates = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    try:
        yield
    finally:
        app.conf.task_always_eager, app.conf.task_eager_propagates = eager, propagates


@pytest.fixture
def registration_open(settings: Any) -> Any:
    settings.ALLOW_REGISTRATION = True
    return settings


@pytest.fixture
def anon() -> Any:
    from rest_framework.test import APIClient

    return APIClient()
