"""`manage.py telegram_bot`: the Telegram command bot, by long polling (no public URL needed)."""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from telegram import Update
from telegram.error import InvalidToken, NetworkError

logger = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 30


class Command(BaseCommand):
    help = "Run the Telegram bot: answers linked chats' commands (/status, /stop, ...) and link codes."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--idle-without-token",
            action="store_true",
            help="without TELEGRAM_BOT_TOKEN, wait quietly instead of failing (a compose service that is always up)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.TELEGRAM_BOT_TOKEN:
            if options["idle_without_token"]:
                self.stdout.write("TELEGRAM_BOT_TOKEN is not set: no Telegram bot runs (set it and restart)")
                self._idle()
                return
            raise CommandError("TELEGRAM_BOT_TOKEN is not set: create a bot with @BotFather and set its token")
        from alerts.telegram_bot import build_application

        application = build_application()
        threading.Thread(target=self._beat, daemon=True, name="heartbeat").start()
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

    @staticmethod
    def heartbeat_file() -> Path:
        # compose's healthcheck reads its age: the process is up and its threads run.
        return Path(settings.VAR_DIR) / "telegram-heartbeat"

    def _beat(self) -> None:
        while True:
            self._touch()
            time.sleep(HEARTBEAT_SECONDS)

    def _touch(self) -> None:
        try:
            path = self.heartbeat_file()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
        except OSError:
            logger.warning("could not write the heartbeat file %s", self.heartbeat_file())

    def _idle(self) -> None:
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        while not stop.is_set():
            self._touch()
            stop.wait(HEARTBEAT_SECONDS)
