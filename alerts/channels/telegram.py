"""Telegram messages through the Bot API (python-telegram-bot), to the chat a channel is linked to."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from telegram import Bot
from telegram.error import BadRequest, Forbidden, InvalidToken, RetryAfter, TelegramError
from telegram.request import HTTPXRequest

from alerts.channels import DeliveryError
from alerts.channels.messages import text

# python-telegram-bot's documented opt-in: durations (RetryAfter.retry_after) as timedelta, the
# type they will have in its next major version; the code below reads either.
os.environ.setdefault("PTB_TIMEDELTA", "true")

if TYPE_CHECKING:
    from alerts.models import Alert, Channel

MAX_MESSAGE = 4096  # the Bot API's limit for one message


def telegram_bot() -> tuple[Bot, HTTPXRequest]:
    """A Bot API client for TELEGRAM_API_BASE_URL (Telegram's, or a local server in tests)."""
    timeout = float(settings.ALERT_TELEGRAM_TIMEOUT_SECONDS)
    request = HTTPXRequest(connect_timeout=timeout, read_timeout=timeout, write_timeout=timeout, pool_timeout=timeout)
    bot = Bot(
        token=settings.TELEGRAM_BOT_TOKEN,
        base_url=settings.TELEGRAM_API_BASE_URL,
        request=request,
        get_updates_request=request,
    )
    return bot, request


def scrub(message: str) -> str:
    """An error text without the bot token (the token is part of every Bot API URL)."""
    token = settings.TELEGRAM_BOT_TOKEN
    return message.replace(token, "<token>") if token else message


async def _send(chat_id: int, body: str) -> None:
    bot, request = telegram_bot()
    # Not `async with bot`: initialize() asks getMe on every send, and its error quotes the token.
    await request.initialize()
    try:
        await bot.send_message(chat_id=chat_id, text=body[:MAX_MESSAGE], disable_web_page_preview=True)
    finally:
        await request.shutdown()


def send_telegram(*, channel: Channel, alert: Alert) -> None:
    if not settings.TELEGRAM_BOT_TOKEN:
        raise DeliveryError(
            "this server has no Telegram bot (TELEGRAM_BOT_TOKEN is not set)", transient=False, blame_channel=False
        )
    if channel.telegram_chat_id is None:
        raise DeliveryError("the channel is not linked to a chat", transient=False)
    try:
        asyncio.run(_send(channel.telegram_chat_id, text(alert)))
    except RetryAfter as exc:
        wait = exc.retry_after
        seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
        raise DeliveryError(
            f"Telegram asks to slow down ({seconds:g} s)", transient=True, retry_after=seconds
        ) from None
    except Forbidden as exc:
        # The user blocked the bot or left the chat: only they can fix it.
        raise DeliveryError(f"Telegram refused: {scrub(exc.message)}", transient=False) from None
    except BadRequest as exc:
        raise DeliveryError(f"Telegram refused: {scrub(exc.message)}", transient=False) from None
    except InvalidToken:
        raise DeliveryError("Telegram rejected this server's bot token", transient=True, blame_channel=False) from None
    except TelegramError as exc:
        raise DeliveryError(f"Telegram: {scrub(exc.message)}", transient=True) from None
