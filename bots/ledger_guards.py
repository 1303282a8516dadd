"""The database guards of the bots' books (core.append_only renders them as triggers).

- a cycle moves forward (`queued` → `running` → `completed`, `failed` or `skipped`) through its
  own service, which fills in what it saw, decided and did while it runs; a finished cycle is
  final; its bot and slot never change;
- an LLM call is final when written;
- a bot with books (cycles, orders, positions, equity, LLM calls, adjustments) is never deleted,
  and its starting capital (the first entry of its ledger) never changes once it has run;
- a user who owns bots or signed an adjustment is not deleted behind the bots' back (a raw delete
  would orphan them: SQLite's shell does not enforce foreign keys).

Changing a rule here needs a migration that installs the guards again (they are also installed
after every `migrate`: bots.apps).
"""

from __future__ import annotations

from core.append_only import Guard, Rule

CYCLE_FINAL = "('completed', 'failed', 'skipped')"
BOOK_TABLES = (
    "bots_cycle",
    "bots_llmcall",
    "trading_order",
    "trading_fill",
    "trading_position",
    "trading_equitysnapshot",
    "trading_accountadjustment",
)


def _cycle_rank(row: str) -> str:
    return f"CASE {row}.status WHEN 'queued' THEN 0 WHEN 'running' THEN 1 ELSE 2 END"


def _has_books(bot_id: str) -> str:
    # Trigger SQL from constants of this module (no input reaches it).
    return " OR ".join(f"EXISTS (SELECT 1 FROM {table} WHERE bot_id = {bot_id})" for table in BOOK_TABLES)  # noqa: S608


BOTS_GUARDS: tuple[Guard, ...] = (
    Guard(
        table="bots_cycle",
        delete_message="cycles are books: they are never deleted",
        updates=(
            Rule("a cycle's bot and slot never change", columns=("id", "bot_id", "slot")),
            Rule("a finished cycle is final", when=f"OLD.status IN {CYCLE_FINAL}"),
            Rule("a cycle's status only moves forward", when=f"{_cycle_rank('NEW')} < {_cycle_rank('OLD')}"),
        ),
    ),
    Guard(
        table="bots_llmcall",
        delete_message="LLM calls are books: they are never deleted",
        updates=(Rule("an LLM call is final: it is never changed"),),
    ),
    Guard(
        # The user table (Django's default user model): a raw delete would orphan the bots and
        # books (SQLite's own shell does not enforce foreign keys). The admin deletes a user only
        # after their bots, which it deletes only when they have no books (accounts.admin).
        table="auth_user",
        delete_refused_when=(
            "EXISTS (SELECT 1 FROM bots_bot WHERE owner_id = OLD.id)"
            " OR EXISTS (SELECT 1 FROM trading_accountadjustment WHERE created_by_id = OLD.id)"
        ),
        delete_message="the user owns bots or signed adjustments: deactivate the user instead",
        reads=("bots_bot", "trading_accountadjustment"),
    ),
    Guard(
        table="bots_bot",
        delete_refused_when=_has_books("OLD.id"),
        delete_message="the bot has books (cycles, orders, equity): it is never deleted",
        updates=(
            Rule(
                "a bot's starting capital never changes once it has run",
                columns=("starting_capital",),
                when=_has_books("OLD.id"),
            ),
        ),
        reads=BOOK_TABLES,
        # The bot row is updated often (lease, schedule): only a statement that sets the capital
        # runs the check.
        update_of=("starting_capital",),
    ),
)
