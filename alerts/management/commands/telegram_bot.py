"""`manage.py telegram_bot`: the Telegram command bot, by long polling (no public URL needed)."""

from __future__ import annotations

import logging
import signal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from telegram import Update
from telegram.error import InvalidToken, NetworkError

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run the Telegram bot: answers linked chats' commands (/status, /stop, ...) and link codes."

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.TELEGRAM_BOT_TOKEN:
            raise CommandError("TELEGRAM_BOT_TOKEN is not set: create a bot with @BotFather and set its token")
        from alerts.telegram_bot import build_application

        application = build_application()
        try:
            application.run_polling(
                allowed_updates=[Update.MESSAGE, Update.CALLBACK_QUERY],
                timeout=30,
                bootstrap_retries=-1,  # Telegram unreachable at start: keep trying, do not exit
                stop_signals=(signal.SIGINT, signal.SIGTERM),
                close_loop=False,
            )
        except InvalidToken:
            # PTB's own message quotes the token: never print it.
            raise CommandError("Telegram rejected TELEGRAM_BOT_TOKEN: check it with @BotFather") from None
        except NetworkError as exc:
            raise CommandError(f"could not reach the Telegram Bot API: {type(exc).__name__}") from None
