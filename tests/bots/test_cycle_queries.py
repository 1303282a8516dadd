"""Queries per cycle, bounded at today's counts: a change that adds queries to every cycle of every
bot fails here (lower the bounds when a change saves some; never raise them without a reason).

The market is read first by another bot, as when bots share a market, so the measured cycle's
count does not depend on what earlier tests left in the market data cache.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import timedelta

import pytest

from bots.cycle import run_cycle
from bots.models import Bot, Cycle
from tests.factories import SLOT, BotFactory
from trading.models import Position

pytestmark = pytest.mark.django_db

AssertMaxQueries = Callable[[int], AbstractContextManager[object]]

HOLD_CYCLE = 26  # a baseline that holds: lease, cycle row, risk, equity snapshot, release
OPENING_CYCLE = 40  # ...and one order filled: order, fill, position, account
CYCLE_WITH_A_POSITION = 32  # holding an open position: its exits are checked, nothing trades


def _bot_on_a_warm_market(model: str) -> Bot:
    neighbour = BotFactory(model="hold", start=True)
    assert run_cycle(bot_id=neighbour.pk, slot=SLOT).status == Cycle.Status.COMPLETED
    bot: Bot = BotFactory(model=model, start=True)
    return bot


def test_a_hold_cycle(django_assert_max_num_queries: AssertMaxQueries) -> None:
    bot = _bot_on_a_warm_market("hold")
    with django_assert_max_num_queries(HOLD_CYCLE):
        cycle = run_cycle(bot_id=bot.pk, slot=SLOT)
    assert cycle.status == Cycle.Status.COMPLETED and not Position.objects.filter(bot=bot).exists()


def test_a_cycle_that_opens_a_position_then_one_that_holds_it(django_assert_max_num_queries: AssertMaxQueries) -> None:
    bot = _bot_on_a_warm_market("buy_and_hold")
    with django_assert_max_num_queries(OPENING_CYCLE):
        cycle = run_cycle(bot_id=bot.pk, slot=SLOT)
    assert cycle.status == Cycle.Status.COMPLETED
    assert Position.objects.filter(bot=bot, status=Position.Status.OPEN).count() == 1

    with django_assert_max_num_queries(CYCLE_WITH_A_POSITION):
        cycle = run_cycle(bot_id=bot.pk, slot=SLOT + timedelta(seconds=180))
    assert cycle.status == Cycle.Status.COMPLETED and not cycle.orders.exists()
