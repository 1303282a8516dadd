"""`manage.py run_cycle`: one cycle by hand, its outcome in the text and in the exit status."""

from __future__ import annotations

import logging
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from bots.models import Bot, Cycle
from tests.factories import BotFactory

pytestmark = pytest.mark.django_db


def test_run_cycle_prints_the_cycle():
    bot = BotFactory(name="by-hand", start=True)
    out = StringIO()
    call_command("run_cycle", "by-hand", stdout=out)
    text = out.getvalue()
    assert f"bot {bot.pk} by-hand" in text and "status: completed" in text
    assert "decision BTC/USD: open_long" in text and "order " in text and "equity " in text


def test_a_failed_cycle_is_a_failing_command_without_a_traceback(caplog):
    bot = BotFactory(name="no-market", start=True)
    Bot.objects.filter(pk=bot.pk).update(exchange="nowhere")  # its market data cannot be read
    with caplog.at_level(logging.WARNING), pytest.raises(CommandError, match="failed: UnknownMarketError: .*nowhere"):
        call_command("run_cycle", str(bot.pk), stdout=StringIO())
    assert Cycle.objects.get(bot=bot).status == Cycle.Status.FAILED
    failures = [r for r in caplog.records if "failed" in r.getMessage()]
    assert failures and all(r.exc_info is None for r in failures)


def test_an_unknown_bot_is_a_message():
    with pytest.raises(CommandError, match="no bot with id or name 'ghost'"):
        call_command("run_cycle", "ghost")


@pytest.mark.parametrize("command", [["run_cycle", "²"], ["bot", "start", "¹"]])
def test_a_digit_int_cannot_read_is_a_name(command):
    with pytest.raises(CommandError, match="no bot with id or name"):
        call_command(*command)
