"""The Telegram bot driven end to end: python-telegram-bot long-polls a local server speaking the
Bot API, which plays the user's Telegram app (real Update JSON, inline keyboard callbacks)."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connections

from alerts.models import Channel
from alerts.services import telegram_link_create
from alerts.telegram_bot import bot_username, build_application
from bots.cycle import run_cycle
from bots.models import Bot
from tests.alerts.conftest import TOKEN
from tests.alerts.servers import SentMessage, TelegramServer
from tests.factories import SLOT, BotFactory
from trading.models import Position

pytestmark = pytest.mark.django_db(transaction=True)

ALICE_CHAT, ALICE = 4242, 11
STRANGER_CHAT, STRANGER = 9999, 66
GROUP_CHAT = -100123
CHATS = (ALICE_CHAT, STRANGER_CHAT, GROUP_CHAT)


class Conversation:
    """Alice's side of the chat: send a message, wait for the bot's answer."""

    def __init__(self, server: TelegramServer, chat_id: int, user_id: int) -> None:
        self.server, self.chat_id, self.user_id = server, chat_id, user_id

    def say(self, text: str) -> SentMessage:
        seen = len(self.server.messages_to(self.chat_id))
        self.server.push_message(chat_id=self.chat_id, user_id=self.user_id, text=text)
        self.server.wait_for(
            lambda sent: len([m for m in sent if str(m.params.get("chat_id")) == str(self.chat_id)]) > seen
        )
        return self.server.messages_to(self.chat_id)[seen]

    def press(self, message: SentMessage, data: str) -> list[SentMessage]:
        seen = len(self.server.sent)
        self.server.push_callback(chat_id=self.chat_id, user_id=self.user_id, message=message, data=data)
        self.server.wait_for(lambda sent: any(m.method == "editMessageText" for m in sent[seen:]))
        return self.server.sent[seen:]


@pytest.fixture
def running_bot(telegram: TelegramServer) -> Iterator[TelegramServer]:
    # The wrong-code counters live in the cache (Redis), which outlives a test run: start afresh.
    from django.core.cache import cache

    cache.delete_many([f"telegram:link-attempts:{chat}" for chat in CHATS])
    application = build_application(token=TOKEN, base_url=telegram.base_url)
    stop = threading.Event()
    failed: list[BaseException] = []

    async def main() -> None:
        async with application:
            await application.post_init(application)  # type: ignore[misc]
            assert application.updater is not None
            await application.updater.start_polling(poll_interval=0, timeout=1)
            await application.start()
            while not stop.is_set():
                await asyncio.sleep(0.02)
            await application.updater.stop()
            await application.stop()

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # reported by the test, not lost in the thread
            failed.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield telegram
    stop.set()
    thread.join(timeout=20)
    assert not failed, failed


def _buttons(message: SentMessage) -> list[dict[str, Any]]:
    return [b for row in message.params["reply_markup"]["inline_keyboard"] for b in row]


def test_a_full_conversation(running_bot: TelegramServer, user) -> None:  # type: ignore[no-untyped-def]
    server = running_bot
    alice = Conversation(server, ALICE_CHAT, ALICE)
    stranger = Conversation(server, STRANGER_CHAT, STRANGER)
    trend = BotFactory(model="buy_and_hold", owner=user, name="Trend Rider", start=True)
    spare = BotFactory(model="buy_and_hold", owner=user, name="spare", start=True)
    for bot in (trend, spare):
        run_cycle(bot_id=bot.pk, slot=SLOT)  # buy and hold: one open BTC/USD position each
    assert bot_username() == "tradingagent_test_bot"  # remembered for the dashboard's t.me link

    # An unlinked chat is ignored, whatever it sends.
    server.push_message(chat_id=STRANGER_CHAT, user_id=STRANGER, text="/status")
    server.push_message(chat_id=STRANGER_CHAT, user_id=STRANGER, text="/stop Trend Rider")
    assert "not valid" in stranger.say("/start AAAAAAAAAAAA").params["text"]  # a guessed code

    code, _ = telegram_link_create(owner_id=user.pk)
    linked = alice.say(f"/start {code}").params["text"]
    assert linked.startswith("Linked to alice@example.com")
    assert server.messages_to(STRANGER_CHAT)[0].params["text"].startswith("Not linked")
    assert len(server.messages_to(STRANGER_CHAT)) == 1, "/status and /stop from the unlinked chat got no answer"
    channel = Channel.objects.get(kind="telegram", telegram_chat_id=ALICE_CHAT)
    assert channel.owner == user and channel.telegram_user_id == ALICE and channel.verified_at is not None

    # The code worked once: replayed from another chat it links nothing.
    assert "not valid" in stranger.say(f"/start {code}").params["text"]
    assert not Channel.objects.filter(telegram_chat_id=STRANGER_CHAT).exists()

    status = alice.say("/status").params["text"]
    assert "Trend Rider" in status and "active" in status and "1 open" in status
    assert f"#{trend.pk} Trend Rider — active" in alice.say("/bots").params["text"]
    assert "long" in alice.say("/positions").params["text"]
    profit = alice.say("/profit Trend Rider").params["text"]
    assert profit.startswith("Trend Rider:") and "LLM 0.00 USD" in profit
    assert "No bot 'nobody'" in alice.say("/pause nobody").params["text"]

    assert "paused" in alice.say("/pause trend rider").params["text"]  # names are case-insensitive
    assert Bot.objects.get(pk=trend.pk).status == "paused"
    assert "resumed" in alice.say(f"/resume #{trend.pk}").params["text"]
    assert Bot.objects.get(pk=trend.pk).status == "active"

    # /stop asks first; nothing happens until the button is pressed.
    ask = alice.say("/stop Trend Rider")
    assert "Stop Trend Rider for good?" in ask.params["text"] and "1 open position(s)" in ask.params["text"]
    yes, cancel = _buttons(ask)
    assert yes["text"] == "Yes, stop Trend Rider" and cancel["text"] == "Cancel"
    assert Bot.objects.get(pk=trend.pk).status == "active"
    answered = alice.press(ask, yes["callback_data"])
    edit = next(m for m in answered if m.method == "editMessageText")
    assert edit.params["text"].startswith("Trend Rider stopped: 1 position(s) closed")
    assert Bot.objects.get(pk=trend.pk).status == "stopped"
    assert Position.objects.get(bot=trend).close_reason == "bot_stopped"
    # The button works once: pressed again it only says so.
    again = alice.press(ask, yes["callback_data"])
    assert "Expired" in next(m for m in again if m.method == "editMessageText").params["text"]

    # A stop can be cancelled.
    ask = alice.say("/stop spare")
    _, cancel = _buttons(ask)
    answered = alice.press(ask, cancel["callback_data"])
    assert "Not stopped" in next(m for m in answered if m.method == "editMessageText").params["text"]
    assert Bot.objects.get(pk=spare.pk).status == "active"

    # /close: one position, now, recorded as a manual exit by Alice.
    closed = alice.say("/close spare btc/usd").params["text"]
    assert closed.startswith("spare: BTC/USD closed at") and "net PnL" in closed
    position = Position.objects.get(bot=spare)
    assert position.status == "closed" and position.close_reason == "manual" and position.closed_by == user
    assert "no open position on BTC/USD" in alice.say("/close spare BTC/USD").params["text"]
    assert "Unknown command" in alice.say("/forceexit all").params["text"]
    if os.environ.get("SHOW_TRANSCRIPT"):
        print("\n" + "\n".join(server.transcript))


def test_in_a_group_only_the_user_who_linked_may_command(running_bot: TelegramServer, user) -> None:  # type: ignore[no-untyped-def]
    server = running_bot
    group = GROUP_CHAT
    BotFactory(owner=user, name="desk-bot", start=True)
    code, _ = telegram_link_create(owner_id=user.pk)
    server.push_message(chat_id=group, user_id=ALICE, text=f"/link {code}", chat_type="group")
    server.wait_for(lambda sent: any(str(m.params.get("chat_id")) == str(group) for m in sent))
    assert Channel.objects.get(telegram_chat_id=group).name == "Telegram Trading desk"
    colleague = Conversation(server, group, 12)
    server.push_message(chat_id=group, user_id=12, text="/pause desk-bot", chat_type="group")
    alice = Conversation(server, group, ALICE)
    assert "Trend" not in alice.say("/bots").params["text"]
    assert Bot.objects.get(name="desk-bot").status == "active", "the colleague's /pause was ignored"
    assert colleague.server is server
