from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from bots.cycle import run_cycle
from bots.management.commands._lookup import find_bot
from trading.models import Order
from trading.numbers import money


class Command(BaseCommand):
    help = "Run one trading cycle of a bot now and print what happened."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("bot", help="bot id or name")

    def handle(self, *args: Any, **options: Any) -> None:
        bot = find_bot(options["bot"])
        slot = timezone.now().replace(microsecond=0)
        cycle = run_cycle(bot_id=bot.pk, slot=slot)
        out = self.stdout
        out.write(
            f"bot {bot.pk} {bot.name} ({bot.provider}/{bot.model}), cycle {cycle.pk} for slot {cycle.slot.isoformat()}"
        )
        style = self.style.SUCCESS if cycle.status == "completed" else self.style.WARNING
        out.write(style(f"status: {cycle.status}") + (f" — {cycle.error}" if cycle.error else ""))
        if cycle.market_time:
            out.write(f"market time: {cycle.market_time.isoformat()}  snapshot {cycle.snapshot_hash[:12]}")
        if cycle.decision_error:
            out.write(self.style.WARNING(f"decision rejected: {cycle.decision_error}"))
        for action in (cycle.decision or {}).get("actions", []):
            out.write(
                f"  decision {action['symbol']}: {action['action']} size {action['size_pct']}% "
                f"x{action['leverage']} conf {action['confidence']} — {action.get('reasoning', '')[:100]}"
            )
        for outcome in (cycle.risk or {}).get("outcomes", []):
            out.write(f"  risk {outcome['symbol']}: {outcome['verdict']} {'; '.join(outcome['reasons'])}")
        for order in Order.objects.filter(cycle=cycle).order_by("created_at"):
            out.write(
                f"  order {order.client_order_id}: {order.side} {order.quantity} {order.symbol} "
                f"{order.status} @ {order.average_price} fee {order.fee}" + (f" ({order.error})" if order.error else "")
            )
        equity = bot.equity_snapshots.order_by("-time").first()
        if equity is not None:
            quote = bot.quote_currency
            out.write(
                f"equity {money(equity.equity, currency=quote)}, cash {money(equity.cash, currency=quote)}, "
                f"unrealized {money(equity.unrealized_pnl, currency=quote)}"
            )
        if cycle.timings:
            out.write("timings (ms): " + ", ".join(f"{k} {v}" for k, v in cycle.timings.items()))
        if cycle.status == "failed":
            # Scripts and cron see the failure in the exit status, not only in the text.
            raise CommandError(f"cycle {cycle.pk} failed: {cycle.error}")
