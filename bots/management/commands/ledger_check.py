"""`manage.py ledger_check [BOT ...]`: prove every bot's books agree (trading.ledger), exit 1 if not."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from bots.ledger_guards import BOTS_GUARDS
from bots.management.commands._lookup import find_bot
from bots.models import Bot
from core.append_only import missing_triggers
from trading.ledger import ledger_check, storage_tolerance
from trading.ledger_guards import TRADING_GUARDS


class Command(BaseCommand):
    help = (
        "Check every bot's books (or the named ones): cash = capital + realized - fees - margin held + "
        "adjustments; each position's quantity and fees = its fills; every equity point = cash + margin + "
        "unrealized at its marks. Prints each discrepancy and exits 1 if there is any."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("bots", nargs="*", metavar="BOT", help="bot id or name (default: every bot)")

    def handle(self, *args: Any, **options: Any) -> None:
        bots = [find_bot(ref) for ref in options["bots"]] if options["bots"] else list(Bot.objects.order_by("pk"))
        tolerance = storage_tolerance()
        out = self.stdout
        if connection.vendor == "sqlite":
            out.write(
                "SQLite keeps 15 significant digits of a stored decimal: amounts are compared within the rounding "
                "of the stored values they involve (exact on PostgreSQL)."
            )
        problems = 0
        missing = missing_triggers(connection, (*TRADING_GUARDS, *BOTS_GUARDS))
        if missing:
            problems += len(missing)
            out.write(self.style.ERROR(f"the append-only guard is missing or disabled: {', '.join(missing)}"))
        totals = {"positions": 0, "fills": 0, "equity points": 0, "adjustments": 0}
        for bot in bots:
            report = ledger_check(
                bot_id=bot.pk, capital=bot.starting_capital, currency=bot.quote_currency, tolerance=tolerance
            )
            counts = {
                "positions": report.positions,
                "fills": report.fills,
                "equity points": report.equity_points,
                "adjustments": report.adjustments,
            }
            for key, value in counts.items():
                totals[key] += value
            summary = ", ".join(f"{value} {key}" for key, value in counts.items())
            if report.clean:
                out.write(f"bot {bot.pk} {bot.name}: ok ({summary})")
                continue
            problems += len(report.discrepancies)
            out.write(self.style.ERROR(f"bot {bot.pk} {bot.name}: {_count(len(report.discrepancies))} ({summary})"))
            for discrepancy in report.discrepancies:
                out.write(f"  bot {bot.pk} {bot.name}: {discrepancy}")
        overall = ", ".join(f"{value} {key}" for key, value in totals.items())
        if problems:
            raise CommandError(f"{_count(problems)} in the books of {len(bots)} bot(s) ({overall})")
        out.write(self.style.SUCCESS(f"the books of {len(bots)} bot(s) agree ({overall})"))


def _count(n: int) -> str:
    return f"{n} discrepanc{'y' if n == 1 else 'ies'}"
