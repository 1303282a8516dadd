"""The books are append-only: the database refuses deleting them and rewriting their history (raw
SQL included), the ORM says so in Python, and the services' own transitions still go through."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction

from bots.cycle import run_cycle
from bots.ledger_guards import BOTS_GUARDS
from bots.models import Bot, Cycle, LLMCall
from bots.services import bot_stop
from core.append_only import install_statements, missing_triggers
from tests.books import books_unguarded
from tests.factories import SLOT, BotFactory
from trading.ledger_guards import TRADING_GUARDS
from trading.models import (
    AccountAdjustment,
    BooksAreAppendOnly,
    EquitySnapshot,
    Fill,
    Order,
    Position,
    TradingAccount,
)
from trading.services import account_adjust

pytestmark = pytest.mark.django_db


@pytest.fixture
def books() -> dict[str, Any]:
    """A bot that opened a position (buy and hold), then was stopped (the position closed), with
    an LLM call and an adjustment on its books."""
    bot = BotFactory(model="buy_and_hold", start=True)
    assert run_cycle(bot_id=bot.pk, slot=SLOT).status == "completed"
    bot_stop(bot=bot)
    LLMCall.objects.create(bot=bot, cycle=Cycle.objects.get(bot=bot), provider="openai", model="m", cost=Decimal(1))
    account_adjust(bot_id=bot.pk, amount=Decimal("1.5"), reason="exchange refunded a fee", user_id=bot.owner_id)
    return {"bot": bot, "position": Position.objects.get(bot=bot)}


def refused(sql: str, params: tuple[Any, ...] = ()) -> str:
    """Run raw SQL that the guard must refuse; returns the database's message."""
    with pytest.raises(IntegrityError) as caught, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
    return str(caught.value)


@pytest.mark.parametrize(
    "table",
    [
        "trading_order",
        "trading_fill",
        "trading_position",
        "trading_equitysnapshot",
        "trading_accountadjustment",
        "bots_cycle",
        "bots_llmcall",
    ],
)
def test_a_raw_delete_of_any_book_is_refused(books: dict[str, Any], table: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {table} WHERE bot_id = %s", [books["bot"].pk])
        assert cursor.fetchone()[0] >= 1
    message = refused(f"DELETE FROM {table}")
    assert "never deleted" in message
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {table} WHERE bot_id = %s", [books["bot"].pk])
        assert cursor.fetchone()[0] >= 1


def test_a_bot_with_books_and_its_account_cannot_be_deleted_by_raw_sql(books: dict[str, Any]) -> None:
    bot = books["bot"]
    assert "the bot has books" in refused("DELETE FROM bots_bot WHERE id = %s", (bot.pk,))
    assert "the account has books" in refused("DELETE FROM trading_tradingaccount WHERE bot_id = %s", (bot.pk,))
    assert "deactivate the user instead" in refused("DELETE FROM auth_user WHERE id = %s", (bot.owner_id,))
    assert "starting capital never changes" in refused(
        "UPDATE bots_bot SET starting_capital = starting_capital + 1 WHERE id = %s", (bot.pk,)
    )
    # The bot row's own state still moves (the lease, the schedule) without touching the guard.
    Bot.objects.filter(pk=bot.pk).update(lease_owner="x", next_cycle_at=None)


@pytest.mark.parametrize(
    ("sql", "says"),
    [
        ("UPDATE trading_fill SET price = price + 1", "a fill is final"),
        ("UPDATE trading_fill SET fee = 0", "a fill is final"),
        ("UPDATE trading_equitysnapshot SET equity = equity * 2", "an equity point is final"),
        ("UPDATE trading_position SET realized_pnl = realized_pnl + 100", "a closed position is final"),
        ("UPDATE trading_position SET status = 'open'", "a closed position is final"),
        ("UPDATE trading_position SET quantity = quantity * 2", "opening"),
        ("UPDATE trading_order SET fee = 0", "final"),
        ("UPDATE trading_order SET client_order_id = 'other'", "identity"),
        ("UPDATE bots_cycle SET decision = NULL", "a finished cycle is final"),
        ("UPDATE bots_cycle SET status = 'running'", "final"),
        ("UPDATE bots_llmcall SET cost = 0", "an LLM call is final"),
        ("UPDATE trading_accountadjustment SET amount = 1000", "an adjustment is final"),
        ("UPDATE trading_tradingaccount SET owner_id = owner_id + 1", "owner never change"),
    ],
)
def test_a_raw_update_of_history_is_refused(books: dict[str, Any], sql: str, says: str) -> None:
    assert says in refused(sql)


def test_the_transitions_the_services_make_are_allowed() -> None:
    bot = BotFactory(model="buy_and_hold", start=True)
    cycle = Cycle.objects.create(bot=bot, slot=SLOT, started_at=SLOT)
    Cycle.objects.filter(pk=cycle.pk).update(decision={"actions": []}, attempts=2)  # a running cycle fills in
    Cycle.objects.filter(pk=cycle.pk).update(status=Cycle.Status.COMPLETED)
    order = Order.objects.create(
        bot=bot, client_order_id="c1", symbol="BTC/USD", side="buy", intent="open", quantity=Decimal(1)
    )
    Order.objects.filter(pk=order.pk).update(price=Decimal(5), intent="close")  # repriced before it is sent
    Order.objects.filter(pk=order.pk).update(status=Order.Status.UNKNOWN)
    Order.objects.filter(pk=order.pk).update(status=Order.Status.OPEN)
    Order.objects.filter(pk=order.pk).update(status=Order.Status.PARTIALLY_FILLED, filled_quantity=Decimal("0.5"))
    Order.objects.filter(pk=order.pk).update(status=Order.Status.FILLED, filled_quantity=Decimal(1))
    # Backwards is refused at every step.
    backwards = Order.objects.create(
        bot=bot, client_order_id="c2", symbol="BTC/USD", side="buy", intent="open", quantity=Decimal(1)
    )
    Order.objects.filter(pk=backwards.pk).update(status=Order.Status.PARTIALLY_FILLED, filled_quantity=Decimal(1))
    assert "only moves forward" in refused("UPDATE trading_order SET status = 'open' WHERE id = %s", (backwards.pk,))
    assert "never decreases" in refused("UPDATE trading_order SET filled_quantity = 0 WHERE id = %s", (backwards.pk,))
    running = Cycle.objects.create(bot=bot, slot=SLOT.replace(minute=3), started_at=SLOT)
    assert "only moves forward" in refused("UPDATE bots_cycle SET status = 'queued' WHERE id = %s", (running.pk,))


def test_an_open_position_moves_its_exits_and_closes_then_is_final() -> None:
    bot = BotFactory(model="buy_and_hold", start=True)
    run_cycle(bot_id=bot.pk, slot=SLOT)
    position = Position.objects.get(bot=bot)
    Position.objects.filter(pk=position.pk).update(stop_loss=position.entry_price / 2, checked_until=SLOT)
    bot_stop(bot=bot)  # closes it through the paper executor
    position.refresh_from_db()
    assert position.status == Position.Status.CLOSED
    assert "final" in refused("UPDATE trading_position SET stop_loss = 1 WHERE id = %s", (position.pk,))


def test_the_orm_refuses_deleting_books_in_python_too(books: dict[str, Any]) -> None:
    bot = books["bot"]
    for model in (Order, Fill, Position, EquitySnapshot, AccountAdjustment, Cycle, LLMCall):
        with pytest.raises(BooksAreAppendOnly):
            model.objects.filter(bot=bot).delete()
        with pytest.raises(BooksAreAppendOnly):
            model.objects.filter(bot=bot).first().delete()


def test_a_bot_that_never_ran_is_deleted_with_its_account() -> None:
    bot = BotFactory(model="hold")
    Bot.objects.get(pk=bot.pk).delete()
    assert not TradingAccount.objects.filter(pk=bot.pk).exists()


def test_every_guard_is_installed_and_a_disabled_one_is_noticed(books: dict[str, Any]) -> None:
    guards = (*TRADING_GUARDS, *BOTS_GUARDS)
    assert missing_triggers(connection, guards) == []
    with books_unguarded():
        expected = sum(bool(g.updates) + (g.delete_refused_when is not None) for g in guards)
        assert len(missing_triggers(connection, guards)) == expected
        Fill.objects.filter(bot=books["bot"]).update(fee=0)  # lifted: a test may corrupt on purpose
    assert missing_triggers(connection, guards) == []
    assert "a fill is final" in refused("UPDATE trading_fill SET fee = 1")


# --- SQLite, the embedded default --------------------------------------------------------------


SQLITE_SCHEMA = """
CREATE TABLE auth_user (id INTEGER PRIMARY KEY);
CREATE TABLE bots_bot (id INTEGER PRIMARY KEY, owner_id INTEGER, starting_capital DECIMAL, lease_owner TEXT);
CREATE TABLE bots_cycle (id INTEGER PRIMARY KEY, bot_id INTEGER, slot TEXT, status TEXT, decision TEXT);
CREATE TABLE bots_llmcall (id INTEGER PRIMARY KEY, bot_id INTEGER, cost DECIMAL);
CREATE TABLE trading_tradingaccount (bot_id INTEGER PRIMARY KEY, owner_id INTEGER, cash DECIMAL);
CREATE TABLE trading_order (
    id INTEGER PRIMARY KEY, bot_id INTEGER, client_order_id TEXT, symbol TEXT, side TEXT, type TEXT,
    reduce_only BOOL, cycle_id INTEGER, created_at TEXT, status TEXT, filled_quantity DECIMAL, price DECIMAL
);
CREATE TABLE trading_fill (id INTEGER PRIMARY KEY, bot_id INTEGER, price DECIMAL);
CREATE TABLE trading_position (
    id INTEGER PRIMARY KEY, bot_id INTEGER, symbol TEXT, side TEXT, quantity DECIMAL, contract_size DECIMAL,
    entry_price DECIMAL, leverage DECIMAL, margin DECIMAL, liquidation_price DECIMAL, thesis TEXT,
    invalidation TEXT, confidence DECIMAL, opened_at TEXT, opened_cycle_id INTEGER, status TEXT,
    stop_loss DECIMAL, realized_pnl DECIMAL
);
CREATE TABLE trading_equitysnapshot (id INTEGER PRIMARY KEY, bot_id INTEGER, equity DECIMAL);
CREATE TABLE trading_accountadjustment (id INTEGER PRIMARY KEY, bot_id INTEGER, amount DECIMAL, created_by_id INTEGER);
"""


def test_the_sqlite_guards_refuse_and_allow_the_same() -> None:
    db = sqlite3.connect(":memory:")
    db.executescript(SQLITE_SCHEMA)
    for guard in (*TRADING_GUARDS, *BOTS_GUARDS):
        for statement in install_statements(guard, vendor="sqlite"):
            db.execute(statement)
    db.executescript(
        """
        INSERT INTO auth_user VALUES (1), (2);
        INSERT INTO bots_bot VALUES (1, 1, 100, ''), (2, 1, 100, '');
        INSERT INTO trading_tradingaccount VALUES (1, 1, 100), (2, 1, 100);
        INSERT INTO bots_cycle VALUES (1, 1, 's', 'running', NULL);
        INSERT INTO trading_order VALUES (1, 1, 'c', 'BTC/USD', 'buy', 'market', 0, 1, 't', 'pending_submit', 0, 1);
        INSERT INTO trading_fill VALUES (1, 1, 10);
        INSERT INTO trading_position VALUES
            (1, 1, 'BTC/USD', 'long', 1, 1, 10, 1, 10, NULL, '', '', NULL, 't', 1, 'open', NULL, 0);
        INSERT INTO trading_equitysnapshot VALUES (1, 1, 100);
        """
    )
    allowed = [
        "UPDATE bots_cycle SET decision = '{}' WHERE id = 1",
        "UPDATE bots_cycle SET status = 'completed' WHERE id = 1",
        "UPDATE trading_order SET price = 2 WHERE id = 1",
        "UPDATE trading_order SET status = 'filled', filled_quantity = 1 WHERE id = 1",
        "UPDATE trading_position SET stop_loss = 9 WHERE id = 1",
        "UPDATE trading_position SET status = 'closed', realized_pnl = 3 WHERE id = 1",
        "UPDATE trading_tradingaccount SET cash = 90 WHERE bot_id = 1",
        "UPDATE bots_bot SET lease_owner = 'x' WHERE id = 1",
        "UPDATE bots_bot SET starting_capital = 200 WHERE id = 2",  # never ran
        "DELETE FROM trading_tradingaccount WHERE bot_id = 2",
        "DELETE FROM bots_bot WHERE id = 2",
        "DELETE FROM auth_user WHERE id = 2",  # owns no bot
    ]
    for sql in allowed:
        db.execute(sql)
    refused_sql = {
        "DELETE FROM trading_fill": "fills are books",
        "DELETE FROM bots_cycle": "cycles are books",
        "DELETE FROM bots_bot WHERE id = 1": "the bot has books",
        "DELETE FROM auth_user WHERE id = 1": "deactivate the user instead",
        "DELETE FROM trading_tradingaccount WHERE bot_id = 1": "the account has books",
        "UPDATE bots_bot SET starting_capital = 1 WHERE id = 1": "starting capital",
        "UPDATE trading_fill SET price = 1": "a fill is final",
        "UPDATE trading_order SET filled_quantity = 0": "final",
        "UPDATE trading_position SET stop_loss = 1": "a closed position is final",
        "UPDATE bots_cycle SET decision = NULL": "a finished cycle is final",
        "UPDATE trading_equitysnapshot SET equity = 1": "an equity point is final",
    }
    for sql, says in refused_sql.items():
        with pytest.raises(sqlite3.IntegrityError, match=says):
            db.execute(sql)
