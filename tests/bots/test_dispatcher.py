"""The dispatcher claims each due bot once per slot, even with two dispatchers at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.db import connection

from bots.models import Bot
from bots.services import bots_dispatch_due, next_slot_after, slot_floor
from tests.factories import BotFactory, UserFactory
from trading.models import Position

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 1, 5, 12, 0, 7, tzinfo=UTC)

DISPATCH_SCRIPT = """
import json, sys
import django
django.setup()
from datetime import datetime
from bots.services import bots_dispatch_due
now = datetime.fromisoformat(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()  # "go": the test starts both processes at once
claimed = []
bots_dispatch_due(now=now, enqueue=lambda bot_id, slot, interval: claimed.append([bot_id, slot.isoformat()]))
print(json.dumps(claimed))
"""


def _due_bots(count: int) -> list[Bot]:
    owner = UserFactory(is_superuser=True)  # exempt from the bots-per-user cap: many bots, one owner
    slot = slot_floor(at=NOW, interval_seconds=180)
    bots = [BotFactory(owner=owner, name=f"b{i}", model="hold", interval_seconds=180) for i in range(count)]
    Bot.objects.filter(pk__in=[b.pk for b in bots]).update(status=Bot.Status.ACTIVE, next_cycle_at=slot)
    return bots


def test_slots_sit_on_the_interval_grid():
    assert slot_floor(at=NOW, interval_seconds=180) == datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    slot = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    assert next_slot_after(slot=slot, interval_seconds=180, now=NOW) == slot + timedelta(seconds=180)
    # A bot that fell an hour behind skips the missed slots instead of running them all.
    late = NOW + timedelta(hours=1)
    assert next_slot_after(slot=slot, interval_seconds=180, now=late) == datetime(2026, 1, 5, 13, 3, tzinfo=UTC)


def test_only_due_active_bots_and_paused_bots_with_positions_are_claimed():
    owner = UserFactory()

    def make(name: str, status: str, at: datetime) -> Bot:
        bot = BotFactory(owner=owner, name=name, model="hold", status=status)
        Bot.objects.filter(pk=bot.pk).update(next_cycle_at=at)
        return bot

    past, future = NOW - timedelta(seconds=1), NOW + timedelta(seconds=60)
    due = make("due", Bot.Status.ACTIVE, past)
    make("not-yet", Bot.Status.ACTIVE, future)
    make("inactive", Bot.Status.INACTIVE, past)
    make("paused-flat", Bot.Status.PAUSED, past)
    paused_open = make("paused-open", Bot.Status.PAUSED, past)
    Position.objects.create(
        bot=paused_open, symbol="BTC/USD", side="long", quantity=1, entry_price=1, margin=1, opened_at=NOW
    )
    enqueued: list[int] = []
    claimed = bots_dispatch_due(now=NOW, enqueue=lambda b, s, i: enqueued.append(b))
    assert sorted(enqueued) == sorted([due.pk, paused_open.pk])
    assert len(claimed) == 2
    # The same tick again claims nothing: next_cycle_at moved on.
    assert bots_dispatch_due(now=NOW, enqueue=lambda b, s, i: enqueued.append(b)) == []


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)  # two processes: they see committed rows only
def test_two_dispatcher_processes_enqueue_each_due_bot_once():
    bots = _due_bots(300)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        # The child processes must use this test's database, not the default one.
        "DATABASE_URL": "postgres://{USER}@{HOST}:{PORT}/{NAME}".format(
            USER=connection.settings_dict["USER"] or "postgres",
            HOST=connection.settings_dict["HOST"] or "127.0.0.1",
            PORT=connection.settings_dict["PORT"] or 5432,
            NAME=connection.settings_dict["NAME"],
        ),
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", DISPATCH_SCRIPT, NOW.isoformat()],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    # Both import Django first; once both are ready, they are told to go together.
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready", proc.communicate()[1]
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outputs.append(json.loads(out.strip().splitlines()[-1]))
    claims = [tuple(c) for out in outputs for c in out]
    assert len(claims) == len(set(claims)) == 300  # every bot once, none twice
    assert {b for b, _ in claims} == {b.pk for b in bots}
    assert set(Bot.objects.values_list("next_cycle_at", flat=True)) == {datetime(2026, 1, 5, 12, 3, tzinfo=UTC)}


def test_the_database_refuses_an_interval_the_dispatcher_cannot_schedule():
    from django.db import IntegrityError, transaction

    (bot,) = _due_bots(1)
    for interval in (86401, 4):
        with pytest.raises(IntegrityError), transaction.atomic():
            Bot.objects.filter(pk=bot.pk).update(interval_seconds=interval)


def test_one_bot_that_cannot_be_scheduled_does_not_stop_the_others():
    # The last representable day: the next slot of this bot lies beyond datetime.max.
    end_of_time = datetime(9999, 12, 31, 12, 0, tzinfo=UTC)
    stuck, fine = _due_bots(2)
    # The stuck bot is the earlier due, so the dispatcher meets it first.
    Bot.objects.filter(pk=stuck.pk).update(next_cycle_at=end_of_time - timedelta(minutes=1), interval_seconds=86400)
    Bot.objects.filter(pk=fine.pk).update(next_cycle_at=end_of_time)
    enqueued: list[int] = []
    claimed = bots_dispatch_due(now=end_of_time, enqueue=lambda bot_id, slot, interval: enqueued.append(bot_id))
    assert enqueued == [fine.pk] and [bot_id for bot_id, _ in claimed] == [fine.pk]
