"""Test helpers for the append-only books (core.append_only)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

from bots.ledger_guards import BOTS_GUARDS
from core.append_only import guards_disabled
from trading.ledger_guards import TRADING_GUARDS

GUARDS = (*TRADING_GUARDS, *BOTS_GUARDS)


@contextmanager
def books_unguarded() -> Iterator[None]:
    """Lift the database's append-only guards inside the test's transaction: for fixtures that
    backdate a row (auto_now_add) and for tests that corrupt the books on purpose."""
    with guards_disabled(connection, GUARDS):
        yield
