"""Database guards for append-only tables: triggers that refuse DELETE, and UPDATE of history.

The books (orders, fills, positions, cycles, LLM calls, equity, adjustments) are written only by
services, and the services never delete them nor rewrite what is history. The models say so, the
admin says so; these triggers make the database say so too, so that nothing (a shell, a raw
`DELETE FROM`, a later bug) can silently wipe or rewrite a row the ledger is made of.

A `Guard` describes one table: whether (or when) a row may be deleted, and the rules an UPDATE
must keep. A rule is violated when its `when` condition holds (SQL over `OLD` and `NEW`, the same
in PostgreSQL and SQLite) and, if it names `columns`, one of them changes (a null-safe
comparison). `install_statements` renders a guard for the connection's database:

- PostgreSQL: one PL/pgSQL function per table, called by a BEFORE UPDATE and a BEFORE DELETE row
  trigger. It runs inside the server as part of the statement: no round trip is added, and a
  DELETE that matches no row does not run it at all.
- SQLite (the embedded default): BEFORE UPDATE / BEFORE DELETE triggers whose body raises
  (`RAISE(ABORT, ...)`) for the first rule that holds.

The error is an integrity error (SQLSTATE 23001 for a delete, 23514 for an update in PostgreSQL;
SQLITE_CONSTRAINT in SQLite), so Django raises `IntegrityError` and the transaction rolls back.

Installation is idempotent (functions replaced, triggers dropped and created again): the apps
install their guards in a migration and again after every `migrate` (SQLite rebuilds a table to
alter it, which drops its triggers). `installed_triggers` lists what is in place, so the ledger
check can say when a guard is missing. `guards_disabled` lifts the guards of some tables for the
current transaction (PostgreSQL: `ALTER TABLE ... DISABLE TRIGGER`, which only the table's owner
may do) and is meant for tests that corrupt a row on purpose.

What the triggers cannot stop: the owner of the tables disabling or dropping them, and TRUNCATE
(PostgreSQL's bulk wipe, which the test suite uses to reset its database). In production, run the
web and worker processes as a database role that does not own the tables (README).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.recorder import MigrationRecorder

PREFIX = "ledger_guard"


@dataclass(frozen=True, slots=True)
class Rule:
    """An UPDATE refused when `when` holds and (if given) one of `columns` changes."""

    message: str
    columns: Sequence[str] = ()
    when: str = ""


@dataclass(frozen=True, slots=True)
class Guard:
    """The append-only rules of one table."""

    table: str
    # DELETE: refused always (""), refused when this SQL condition over OLD holds, or allowed (None).
    delete_refused_when: str | None = ""
    delete_message: str = "the books are append-only: rows are never deleted"
    updates: Sequence[Rule] = field(default_factory=tuple)
    # Tables the conditions read: the guard is installed only once they all exist.
    reads: Sequence[str] = ()
    # Run the UPDATE checks only for statements that set one of these columns (all when empty):
    # a guard on a busy table (the bot row) then costs nothing to the updates it does not concern.
    update_of: Sequence[str] = ()


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _violation(rule: Rule, vendor: str) -> str:
    differs = " IS DISTINCT FROM " if vendor == "postgresql" else " IS NOT "
    changed = " OR ".join(f'OLD."{c}"{differs}NEW."{c}"' for c in rule.columns)
    if rule.when and changed:
        # CASE, not AND: the condition (which may read other tables) runs only for a real change.
        return f"(CASE WHEN {changed} THEN ({rule.when}) ELSE FALSE END)"
    if rule.when:
        return f"({rule.when})"
    return f"({changed})" if changed else "TRUE"


def _of(guard: Guard) -> str:
    return " OF " + ", ".join(f'"{c}"' for c in guard.update_of) if guard.update_of else ""


def _names(guard: Guard) -> tuple[str, str, str]:
    base = f"{PREFIX}_{guard.table}"
    return base, f"{base}_update", f"{base}_delete"


def install_statements(guard: Guard, *, vendor: str) -> list[str]:
    """SQL that (re)installs the guard on its table, for `vendor` ("postgresql" or "sqlite")."""
    function, on_update, on_delete = _names(guard)
    table = f'"{guard.table}"'
    statements = remove_statements(guard, vendor=vendor)
    if vendor == "postgresql":
        checks = [
            f"  IF {_violation(rule, vendor)} THEN\n"
            f"    RAISE EXCEPTION USING ERRCODE = '23514', MESSAGE = {_quote(f'{guard.table}: {rule.message}')};\n"
            "  END IF;"
            for rule in guard.updates
        ]
        on_delete_body = ["    RETURN OLD;"]
        if guard.delete_refused_when is not None:
            condition = guard.delete_refused_when or "TRUE"
            message = _quote(f"{guard.table}: {guard.delete_message}")
            on_delete_body = [
                f"    IF {condition} THEN",
                f"      RAISE EXCEPTION USING ERRCODE = '23001', MESSAGE = {message};",
                "    END IF;",
                "    RETURN OLD;",
            ]
        body = "\n".join(
            ["BEGIN", "  IF TG_OP = 'DELETE' THEN", *on_delete_body, "  END IF;", *checks, "  RETURN NEW;", "END"]
        )
        statements.append(
            f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $guard$\n{body}\n$guard$"
        )
        if guard.updates:
            statements.append(
                f"CREATE TRIGGER {on_update} BEFORE UPDATE{_of(guard)} ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {function}()"
            )
        if guard.delete_refused_when is not None:
            statements.append(
                f"CREATE TRIGGER {on_delete} BEFORE DELETE ON {table} FOR EACH ROW EXECUTE FUNCTION {function}()"
            )
        return statements
    if vendor == "sqlite":
        if guard.updates:
            raises = " ".join(
                f"SELECT RAISE(ABORT, {_quote(f'{guard.table}: {rule.message}')}) WHERE {_violation(rule, vendor)};"
                for rule in guard.updates
            )
            statements.append(
                f"CREATE TRIGGER {on_update} BEFORE UPDATE{_of(guard)} ON {table} FOR EACH ROW BEGIN {raises} END"
            )
        if guard.delete_refused_when is not None:
            condition = guard.delete_refused_when or "1"
            message = _quote(f"{guard.table}: {guard.delete_message}")
            statements.append(
                f"CREATE TRIGGER {on_delete} BEFORE DELETE ON {table} FOR EACH ROW "
                f"BEGIN SELECT RAISE(ABORT, {message}) WHERE {condition}; END"
            )
        return statements
    raise ValueError(f"no append-only guard for the {vendor!r} database")


def remove_statements(guard: Guard, *, vendor: str) -> list[str]:
    """SQL that removes the guard (nothing to remove is fine)."""
    function, on_update, on_delete = _names(guard)
    table = f'"{guard.table}"'
    if vendor == "postgresql":
        return [
            f"DROP TRIGGER IF EXISTS {on_update} ON {table}",
            f"DROP TRIGGER IF EXISTS {on_delete} ON {table}",
            f"DROP FUNCTION IF EXISTS {function}()",
        ]
    if vendor == "sqlite":
        return [f"DROP TRIGGER IF EXISTS {on_update}", f"DROP TRIGGER IF EXISTS {on_delete}"]
    raise ValueError(f"no append-only guard for the {vendor!r} database")


def install(connection: BaseDatabaseWrapper, guards: Sequence[Guard]) -> list[str]:
    """Install every guard whose tables exist; returns the tables guarded."""
    existing = set(connection.introspection.table_names())
    done = []
    with connection.cursor() as cursor:
        for guard in guards:
            if guard.table not in existing or not set(guard.reads) <= existing:
                continue
            for statement in install_statements(guard, vendor=connection.vendor):
                cursor.execute(statement)
            done.append(guard.table)
    return done


def remove(connection: BaseDatabaseWrapper, guards: Sequence[Guard]) -> None:
    existing = set(connection.introspection.table_names())
    with connection.cursor() as cursor:
        for guard in guards:
            if guard.table in existing:
                for statement in remove_statements(guard, vendor=connection.vendor):
                    cursor.execute(statement)


def installed_triggers(connection: BaseDatabaseWrapper) -> set[str]:
    """The names of the guard triggers in place in this database."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgenabled <> 'D' AND tgname LIKE %s",
                [f"{PREFIX}%"],
            )
        else:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE %s", [f"{PREFIX}%"])
        return {row[0] for row in cursor.fetchall()}


def missing_triggers(connection: BaseDatabaseWrapper, guards: Sequence[Guard]) -> list[str]:
    """The guard triggers these guards should have in place and do not (dropped or disabled)."""
    present = installed_triggers(connection)
    missing = []
    for guard in guards:
        _, on_update, on_delete = _names(guard)
        if guard.updates and on_update not in present:
            missing.append(on_update)
        if guard.delete_refused_when is not None and on_delete not in present:
            missing.append(on_delete)
    return missing


def reinstall_after_migrate(guards: Sequence[Guard], *, migration: tuple[str, str]) -> Callable[..., None]:
    """A post_migrate receiver installing `guards` again once `migration` (the one that installs
    them) is applied: SQLite drops a table's triggers whenever a migration rebuilds the table."""

    def receiver(*, using: str = DEFAULT_DB_ALIAS, **kwargs: Any) -> None:
        connection = connections[using]
        if migration in MigrationRecorder(connection).applied_migrations():
            install(connection, guards)

    return receiver


@contextmanager
def guards_disabled(connection: BaseDatabaseWrapper, guards: Sequence[Guard]) -> Iterator[None]:
    """Lift these guards inside the current transaction (tests that corrupt rows on purpose).

    PostgreSQL disables the triggers (ALTER TABLE, rolled back with the transaction: needs the
    table's owner); SQLite drops and reinstalls them.
    """
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # ALTER TABLE refuses a table with pending (deferred) foreign key checks: run them now.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for guard in guards:
            if connection.vendor == "postgresql":
                cursor.execute(f'ALTER TABLE "{guard.table}" DISABLE TRIGGER USER')
            else:
                for statement in remove_statements(guard, vendor=connection.vendor):
                    cursor.execute(statement)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            for guard in guards:
                if connection.vendor == "postgresql":
                    cursor.execute(f'ALTER TABLE "{guard.table}" ENABLE TRIGGER USER')
                else:
                    for statement in install_statements(guard, vendor=connection.vendor):
                        cursor.execute(statement)
            if connection.vendor == "postgresql":
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")
