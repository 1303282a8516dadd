from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from bots.exceptions import BotError
from bots.management.commands._lookup import find_bot
from bots.services import bot_pause, bot_start, bot_stop
from trading.numbers import money


class Command(BaseCommand):
    help = "Start, pause or stop a bot (stop closes every position at market)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("command", choices=("start", "pause", "stop"))
        parser.add_argument("bot", help="bot id or name")
        parser.add_argument("--confirm-live", action="store_true", help="confirm live trading with real money")

    def handle(self, *args: Any, **options: Any) -> None:
        bot = find_bot(options["bot"])
        try:
            if options["command"] == "start":
                bot_start(bot=bot, confirm_live=options["confirm_live"])
                self.stdout.write(
                    self.style.SUCCESS(f"{bot.name} started; its first cycle runs within one dispatcher tick")
                )
            elif options["command"] == "pause":
                bot_pause(bot=bot)
                self.stdout.write(self.style.SUCCESS(f"{bot.name} paused; open positions keep their stops"))
            else:
                result = bot_stop(bot=bot)
                self.stdout.write(
                    self.style.SUCCESS(
                        f"{bot.name} stopped: {result.closed_positions} position(s) closed, realized PnL after fees "
                        f"{money(result.realized_pnl, currency=bot.quote_currency)}, {result.canceled_orders} order(s) canceled"
                    )
                )
        except BotError as exc:
            raise CommandError(str(exc)) from None
