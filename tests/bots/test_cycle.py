"""The cycle end to end on the replay feed and the paper broker (PostgreSQL, Redis)."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection

from bots.cycle import run_cycle
from bots.models import Bot, Cycle
from bots.tasks import run_trading_cycle
from tests.factories import SLOT, BotFactory
from trading.models import EquitySnapshot, Fill, Order, Position
from trading.order_ids import order_leg

pytestmark = pytest.mark.django_db


def test_a_cycle_records_every_stage_and_trades():
    bot = BotFactory(model="buy_and_hold", start=True)
    cycle = run_cycle(bot_id=bot.pk, slot=SLOT)

    assert cycle.status == Cycle.Status.COMPLETED, cycle.error
    assert cycle.snapshot and cycle.snapshot_hash and cycle.market_time is not None
    assert cycle.prompt and cycle.decision is not None
    assert cycle.decision["actions"][0]["action"] == "open_long"
    assert cycle.risk["outcomes"][0]["verdict"] in ("approved", "clamped")
    assert {"market_data", "exits", "decision", "risk", "execution", "record", "cpu_ms"} <= set(cycle.timings)
    order = Order.objects.get(cycle=cycle)
    assert order.status == Order.Status.FILLED and order.intent == Order.Intent.OPEN
    # Deterministic: bot, slot and leg (the symbol's digest and the intent); Binance allows 36 chars.
    assert order.client_order_id == f"ta-{bot.pk}-{int(SLOT.timestamp())}-{order_leg(symbol='BTC/USD', intent='open')}"
    assert len(order.client_order_id) <= 36
    position = Position.objects.get(bot=bot, status=Position.Status.OPEN)
    assert position.quantity == order.quantity and position.fees == order.fee > 0
    bot.refresh_from_db()
    # Cash paid for the margin and the fee; equity is cash + margin + unrealized PnL.
    assert bot.account.cash == Decimal(10000) - position.margin - position.fees
    snapshot = EquitySnapshot.objects.get(cycle=cycle)
    assert snapshot.equity == snapshot.cash + position.margin + snapshot.unrealized_pnl


def test_same_symbols_same_slot_same_snapshot():
    first = BotFactory(model="hold", name="a", start=True)
    second = BotFactory(model="ema_rsi", name="b", start=True)
    a = run_cycle(bot_id=first.pk, slot=SLOT)
    b = run_cycle(bot_id=second.pk, slot=SLOT)
    later = run_cycle(bot_id=first.pk, slot=SLOT + timedelta(seconds=180))
    assert a.snapshot_hash == b.snapshot_hash
    assert a.snapshot == b.snapshot
    assert later.snapshot_hash != a.snapshot_hash


def test_duplicate_delivery_runs_the_slot_once():
    bot = BotFactory(model="buy_and_hold", start=True)
    first = run_trading_cycle(bot.pk, SLOT.isoformat())
    second = run_trading_cycle(bot.pk, SLOT.isoformat())
    assert first == second == Cycle.Status.COMPLETED
    assert Cycle.objects.filter(bot=bot).count() == 1
    assert Order.objects.filter(bot=bot).count() == 1
    assert Fill.objects.filter(bot=bot).count() == 1


@pytest.mark.django_db(transaction=True)  # six threads, six connections: committed rows only
def test_concurrent_deliveries_give_one_cycle_and_one_set_of_orders():
    bot = BotFactory(model="buy_and_hold", symbols=["BTC/USD"], start=True)
    barrier = threading.Barrier(6)
    results: list[str] = []
    errors: list[BaseException] = []

    def deliver() -> None:
        try:
            barrier.wait()
            results.append(run_trading_cycle(bot.pk, SLOT.isoformat()))
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()  # each thread has its own connection

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert Cycle.objects.filter(bot=bot).count() == 1
    assert Cycle.objects.get(bot=bot).status == Cycle.Status.COMPLETED
    assert Order.objects.filter(bot=bot).count() == 1
    assert Fill.objects.filter(bot=bot).count() == 1
    assert Position.objects.filter(bot=bot).count() == 1


def test_interrupted_cycle_resumes_without_duplicating_its_order(monkeypatch):
    bot = BotFactory(model="buy_and_hold", start=True)

    class WorkerKilled(BaseException):
        """Not an Exception: like a killed process, nothing in the cycle catches it."""

    def killed(*args, **kwargs):
        raise WorkerKilled

    from trading.executors import PaperExecutor

    monkeypatch.setattr(PaperExecutor, "execute", killed)
    with pytest.raises(WorkerKilled):
        run_cycle(bot_id=bot.pk, slot=SLOT)
    monkeypatch.undo()

    cycle = Cycle.objects.get(bot=bot, slot=SLOT)
    assert cycle.status == Cycle.Status.RUNNING
    order = Order.objects.get(bot=bot)
    assert order.status == Order.Status.PENDING_SUBMIT  # written before "submission", not filled
    decision_before = cycle.decision

    # The dead worker's lease is still on the bot until it expires.
    Bot.objects.filter(pk=bot.pk).update(lease_owner="cycle:dead", lease_until=cycle.started_at + timedelta(hours=1))
    skipped = run_cycle(bot_id=bot.pk, slot=SLOT)
    assert skipped.pk == cycle.pk and skipped.status == Cycle.Status.RUNNING  # not resumed while leased
    Bot.objects.filter(pk=bot.pk).update(lease_until=cycle.started_at - timedelta(seconds=1))

    resumed = run_cycle(bot_id=bot.pk, slot=SLOT)
    assert resumed.pk == cycle.pk
    assert resumed.status == Cycle.Status.COMPLETED, resumed.error
    assert resumed.attempts == 2
    assert resumed.decision == decision_before  # not decided again
    assert Order.objects.filter(bot=bot).count() == 1
    order.refresh_from_db()
    assert order.status == Order.Status.FILLED
    assert Fill.objects.filter(bot=bot).count() == 1
    assert Position.objects.filter(bot=bot).count() == 1


def test_stale_pending_order_of_an_earlier_slot_is_canceled_not_filled_late(monkeypatch):
    bot = BotFactory(model="buy_and_hold", start=True)
    from trading.executors import PaperExecutor

    class WorkerKilled(BaseException):
        pass

    def killed(*args, **kwargs):
        raise WorkerKilled

    monkeypatch.setattr(PaperExecutor, "execute", killed)
    with pytest.raises(WorkerKilled):
        run_cycle(bot_id=bot.pk, slot=SLOT)
    monkeypatch.undo()

    later = run_cycle(bot_id=bot.pk, slot=SLOT + timedelta(seconds=180))
    assert later.status == Cycle.Status.COMPLETED, later.error
    stale = Order.objects.get(cycle__slot=SLOT)
    assert stale.status == Order.Status.CANCELED
    # The later cycle decided afresh and opened the position with its own order.
    assert Order.objects.filter(bot=bot, status=Order.Status.FILLED).count() == 1
    assert Position.objects.filter(bot=bot, status=Position.Status.OPEN).count() == 1


def test_paused_bot_runs_protect_only_cycles():
    bot = BotFactory(model="buy_and_hold", start=True)
    run_cycle(bot_id=bot.pk, slot=SLOT)
    from bots.services import bot_pause

    bot_pause(bot=bot)
    cycle = run_cycle(bot_id=bot.pk, slot=SLOT + timedelta(seconds=180))
    assert cycle.kind == Cycle.Kind.PROTECT and cycle.status == Cycle.Status.COMPLETED
    assert cycle.decision is None and cycle.prompt == ""
    assert Order.objects.filter(bot=bot).count() == 1


def test_stopped_bot_skips_its_queued_cycle():
    bot = BotFactory(model="buy_and_hold", start=True)
    from bots.services import bot_stop

    bot_stop(bot=bot)
    cycle = run_cycle(bot_id=bot.pk, slot=SLOT)
    assert cycle.status == Cycle.Status.SKIPPED
    assert not Order.objects.filter(bot=bot).exists()


def test_a_failing_stage_marks_the_cycle_failed_and_trips_the_failure_breaker(settings):
    settings.BOT_MAX_CONSECUTIVE_FAILURES = 2
    bot = BotFactory(model="buy_and_hold", symbols=["NOPE/USD"], start=True)
    first = run_cycle(bot_id=bot.pk, slot=SLOT)
    assert first.status == Cycle.Status.FAILED
    assert "NOPE/USD" in first.error
    run_cycle(bot_id=bot.pk, slot=SLOT + timedelta(seconds=180))
    bot.refresh_from_db()
    assert bot.status == Bot.Status.PAUSED and bot.status_reason.startswith("failures")
    assert bot.alerts.filter(kind="risk").exists()


def test_a_broker_that_cannot_be_built_fails_the_cycle_not_the_task(monkeypatch):
    from trading.brokers.base import PermanentBrokerError

    bot = BotFactory(model="buy_and_hold", start=True)

    def no_broker(bot):
        raise PermanentBrokerError("kraken has no testnet/sandbox in ccxt")

    import bots.cycle

    monkeypatch.setattr(bots.cycle, "broker_for_bot", no_broker)
    cycle = run_cycle(bot_id=bot.pk, slot=SLOT)
    assert cycle.status == Cycle.Status.FAILED and "no testnet" in cycle.error
    bot.refresh_from_db()
    assert bot.consecutive_failures == 1 and bot.lease_owner == ""
