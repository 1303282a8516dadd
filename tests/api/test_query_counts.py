"""List endpoints make a constant number of queries, however many bots and markets (no N+1)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from bots.cycle import run_cycle
from tests.factories import SLOT, BotFactory, UserFactory

pytestmark = pytest.mark.django_db


def _queries_for(path: str, bots: int) -> int:
    owner = UserFactory()
    for i in range(bots):
        bot = BotFactory(owner=owner, name=f"b{i}", start=True)
        # Each bot last traded at another market time, so each needs its own mark price.
        run_cycle(bot_id=bot.pk, slot=SLOT + timedelta(hours=i))
    api = APIClient()
    api.force_authenticate(owner)
    with CaptureQueriesContext(connection) as ctx:
        assert api.get(path).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("path", ["/api/bots/", "/api/positions/"])
def test_list_queries_do_not_grow_with_bots(path):
    assert _queries_for(path, 2) == _queries_for(path, 8)
