"""The Telegram bot you can talk to: `manage.py telegram_bot` (long polling, no public URL needed).

Commands, in the spirit of freqtrade's Telegram control:

    /status              every bot: status, equity, PnL, open positions
    /bots                your bots with their ids
    /profit [BOT]        PnL (realized, unrealized, fees) and LLM cost, per bot or all
    /positions           open positions with their unrealized PnL
    /pause BOT           no new decisions (stops and targets stay watched)
    /resume BOT          start a paused bot again
    /stop BOT            stop for good, closing every position at market: asks to confirm first
    /close BOT SYMBOL    close one position at market now (a manual exit)
    /help                this list

A chat is linked to an account by a one-time code from the dashboard (`/start CODE`, which is
what the dashboard's t.me link sends, or `/link CODE`). Until then the bot ignores the chat:
it answers only a code. In a group chat only the Telegram user who linked it may give commands.
A BOT is a bot's name (as in /bots) or its id (`#12`).

The command logic (`handle_text`, `handle_callback`) is plain synchronous Django code returning
replies; the python-telegram-bot Application only carries updates in and replies out.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import close_old_connections, connections
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import Application, CallbackQueryHandler, ContextTypes, MessageHandler, filters
from telegram.request import HTTPXRequest

from alerts.models import Channel
from alerts.services import LinkRefused, telegram_link_redeem
from bots import performance, selectors, services
from bots.exceptions import BotError
from bots.models import Bot
from trading.models import Position
from trading.numbers import money, plain

logger = logging.getLogger(__name__)

CONFIRM_SECONDS = 60
# Wrong codes a chat may send per LINK_WINDOW before its codes are ignored (guessing is pointless
# anyway: 60-bit codes that live 10 minutes; this only keeps a script from trying).
LINK_ATTEMPTS = 5
LINK_WINDOW = 600
USERNAME_CACHE_KEY = "telegram:bot_username"

HELP = """Commands:
/status — every bot: status, equity, PnL
/bots — your bots and their ids
/profit [bot] — PnL, fees and LLM cost
/positions — open positions
/pause BOT — no new decisions (exits stay watched)
/resume BOT — start a paused bot again
/stop BOT — stop for good, closing every position (asks first)
/close BOT SYMBOL — close one position now
/help — this list
BOT is a name from /bots or an id such as #12."""


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    buttons: list[tuple[str, str]] = field(default_factory=list)  # (label, callback data)


@dataclass(frozen=True, slots=True)
class CallbackAnswer:
    notice: str  # shown briefly by the client
    edit: str = ""  # replaces the confirmation message's text (and removes its buttons)
    replies: list[Reply] = field(default_factory=list)


# --- Authorisation ---------------------------------------------------------------------------------


def linked_user(*, chat_id: int, telegram_user_id: int | None) -> User | None:
    """The account a chat is linked to, if this Telegram user may command it."""
    channel = (
        Channel.objects.select_related("owner")
        .filter(kind=Channel.Kind.TELEGRAM, telegram_chat_id=chat_id, owner__is_active=True)
        .first()
    )
    if channel is None or channel.telegram_user_id != telegram_user_id:
        return None
    return channel.owner


def _link(*, chat_id: int, telegram_user_id: int, title: str, code: str) -> list[Reply]:
    key = f"telegram:link-attempts:{chat_id}"
    cache.add(key, 0, timeout=LINK_WINDOW)
    if int(cache.get(key) or 0) >= LINK_ATTEMPTS:
        return []  # too many wrong codes from this chat: silence until the window ends
    try:
        channel = telegram_link_redeem(code=code, chat_id=chat_id, telegram_user_id=telegram_user_id, title=title)
    except LinkRefused as exc:
        try:
            cache.incr(key)
        except ValueError:
            cache.set(key, 1, timeout=LINK_WINDOW)
        return [Reply(f"Not linked: {exc}")]
    owner = channel.owner
    return [
        Reply(
            f"Linked to {owner.email or owner.username}. Alerts of the rules that use the channel "
            f"'{channel.name}' come here.\n\n{HELP}"
        )
    ]


# --- Commands --------------------------------------------------------------------------------------


def _find_bot(user: User, ref: str) -> Bot | None:
    ref = ref.strip()
    bots = Bot.objects.filter(owner=user)
    number = ref[1:] if ref.startswith("#") else ref
    if number.isdigit() and (ref.startswith("#") or not bots.filter(name__iexact=ref).exists()):
        return bots.filter(pk=int(number)).first()
    return bots.filter(name__iexact=ref).first()


def _no_bot(ref: str) -> list[Reply]:
    return [Reply(f"No bot '{ref}' of yours. /bots lists them.")]


def _status(user: User, args: str) -> list[Reply]:
    rows = selectors.bots_overview(user=user)
    if not rows:
        return [Reply("You have no bots yet.")]
    lines = []
    for bot, account in rows:
        quote = bot.quote_currency
        pnl = selectors.pnl_of(bot=bot, account=account)
        line = (
            f"{bot.name} (#{bot.pk}) — {bot.status}: equity {money(account.equity, currency=quote)}, "
            f"PnL {'+' if pnl > 0 else ''}{money(pnl, currency=quote)}, {len(account.marks)} open"
        )
        if bot.status_reason and bot.status != Bot.Status.ACTIVE:
            line += f"\n   ({bot.status_reason[:120]})"
        lines.append(line)
    return [Reply("\n".join(lines))]


def _bots(user: User, args: str) -> list[Reply]:
    bots = list(Bot.objects.filter(owner=user).order_by("name"))
    if not bots:
        return [Reply("You have no bots yet.")]
    return [Reply("\n".join(f"#{b.pk} {b.name} — {b.status}, {b.get_provider_display()} {b.model}" for b in bots))]


def _profit(user: User, args: str) -> list[Reply]:
    if args:
        bot = _find_bot(user, args)
        if bot is None:
            return _no_bot(args)
        bots = [bot]
    else:
        bots = list(Bot.objects.filter(owner=user).order_by("name"))
    if not bots:
        return [Reply("You have no bots yet.")]
    figures = performance.bots_performance(bots=bots, period="all")
    lines = []
    totals: dict[str, Decimal] = {}
    llm = Decimal(0)
    for bot in bots:
        p = figures[bot.pk]
        quote = bot.quote_currency
        win = "—" if p.win_rate is None else f"{plain(p.win_rate, places=1)} %"
        # After fees, in the account's currency; the LLM bill is in USD and stays apart.
        pnl = p.total_pnl - p.fees
        lines.append(
            f"{bot.name}: {'+' if pnl > 0 else ''}{money(pnl, currency=quote)} after fees "
            f"({'n/a' if p.return_pct is None else plain(p.return_pct, places=2)} %) — realized {money(p.realized_pnl, currency=quote)}, "
            f"unrealized {money(p.unrealized_pnl, currency=quote)}, fees {money(p.fees, currency=quote)}; "
            f"{p.trades} trades, win rate {win}; LLM {money(p.llm_cost, currency='USD')}"
        )
        totals[quote] = totals.get(quote, Decimal(0)) + pnl
        llm += p.llm_cost
    if len(bots) > 1:
        # One total per currency: a USD and a BTC account are never added together.
        summed = ", ".join(money(v, currency=q) for q, v in sorted(totals.items()))
        lines.append(f"\nTotal after fees: {summed}; LLM cost {money(llm, currency='USD')}")
    return [Reply("\n".join(lines))]


def _positions(user: User, args: str) -> list[Reply]:
    rows = selectors.bots_overview(user=user)
    lines = []
    for bot, account in rows:
        quote = bot.quote_currency
        for mark in account.marks:
            pos = mark.position
            upnl = "no price yet" if mark.unrealized_pnl is None else money(mark.unrealized_pnl, currency=quote)
            lines.append(
                f"{bot.name}: {pos.side} {plain(pos.quantity)} {pos.symbol} at {plain(pos.entry_price)}"
                f" ×{plain(pos.leverage)}, unrealized {upnl}"
            )
    return [Reply("\n".join(lines) if lines else "No open positions.")]


def _pause(user: User, args: str) -> list[Reply]:
    if not args:
        return [Reply("Which bot? /pause BOT")]
    bot = _find_bot(user, args)
    if bot is None:
        return _no_bot(args)
    services.bot_pause(bot=bot, reason="paused from Telegram")
    return [Reply(f"{bot.name} paused: no new decisions; its open positions keep their stop-loss and take-profit.")]


def _resume(user: User, args: str) -> list[Reply]:
    if not args:
        return [Reply("Which bot? /resume BOT")]
    bot = _find_bot(user, args)
    if bot is None:
        return _no_bot(args)
    if bot.status != Bot.Status.PAUSED:
        return [Reply(f"{bot.name} is {bot.status}, not paused.")]
    services.bot_start(bot=bot)
    return [Reply(f"{bot.name} resumed: its next cycle runs within seconds.")]


def _stop(user: User, args: str, *, chat_id: int) -> list[Reply]:
    if not args:
        return [Reply("Which bot? /stop BOT")]
    bot = _find_bot(user, args)
    if bot is None:
        return _no_bot(args)
    if bot.status == Bot.Status.STOPPED:
        return [Reply(f"{bot.name} is stopped already.")]
    open_positions = bot.positions.filter(status=Position.Status.OPEN).count()
    token = secrets.token_urlsafe(12)
    # One-time and short-lived: the button works once, in this chat, for a minute.
    cache.set(f"telegram:confirm:{token}", {"chat_id": chat_id, "bot_id": bot.pk, "user_id": user.pk}, CONFIRM_SECONDS)
    return [
        Reply(
            f"Stop {bot.name} for good? This cancels its open orders and closes its {open_positions} open "
            f"position(s) at market. A stopped bot cannot be started again.",
            buttons=[(f"Yes, stop {bot.name}"[:60], f"stop:{token}"), ("Cancel", f"cancel:{token}")],
        )
    ]


def _close(user: User, args: str) -> list[Reply]:
    parts = args.split()
    if len(parts) < 2:
        return [Reply("Which position? /close BOT SYMBOL, e.g. /close my-bot BTC/USD")]
    ref, symbol = " ".join(parts[:-1]), parts[-1].upper()
    bot = _find_bot(user, ref)
    if bot is None:
        return _no_bot(ref)
    result = services.position_close(bot=bot, symbol=symbol, user=user)
    if not result.closed:
        return [
            Reply(
                f"{bot.name}: the exit order for {symbol} is {result.order_status or 'pending'}; "
                "the next cycle settles it with the exchange."
            )
        ]
    assert result.net_pnl is not None
    quote = bot.quote_currency
    return [
        Reply(
            f"{bot.name}: {symbol} closed at {plain(result.exit_price)}, net PnL "
            f"{'+' if result.net_pnl > 0 else ''}{money(result.net_pnl, currency=quote)}."
        )
    ]


COMMANDS: dict[str, Callable[[User, str], list[Reply]]] = {
    "/status": _status,
    "/bots": _bots,
    "/profit": _profit,
    "/positions": _positions,
    "/pause": _pause,
    "/resume": _resume,
    "/close": _close,
    "/help": lambda user, args: [Reply(HELP)],
}


def handle_text(*, chat_id: int, telegram_user_id: int | None, title: str, text: str) -> list[Reply]:
    """The replies to one message; [] for a chat that is not linked (it is ignored)."""
    head, _, rest = text.strip().partition(" ")
    command = head.split("@", 1)[0].lower()  # "/status@MyBot" in a group
    args = rest.strip()
    if command in ("/start", "/link") and args and telegram_user_id is not None:
        return _link(chat_id=chat_id, telegram_user_id=telegram_user_id, title=title, code=args)
    user = linked_user(chat_id=chat_id, telegram_user_id=telegram_user_id)
    if user is None:
        return []
    if command == "/start":
        return [Reply(HELP)]
    try:
        if command == "/stop":
            return _stop(user, args, chat_id=chat_id)
        handler = COMMANDS.get(command)
        if handler is None:
            return [Reply("Unknown command. /help lists them.")] if command.startswith("/") else []
        return handler(user, args)
    except BotError as exc:
        return [Reply(f"Could not do that: {exc}")]


def handle_callback(*, chat_id: int, telegram_user_id: int | None, data: str) -> CallbackAnswer:
    """A button of a confirmation message was pressed."""
    user = linked_user(chat_id=chat_id, telegram_user_id=telegram_user_id)
    if user is None:
        return CallbackAnswer(notice="")
    action, _, token = data.partition(":")
    key = f"telegram:confirm:{token}"
    pending = cache.get(key)
    if not pending or pending.get("chat_id") != chat_id or pending.get("user_id") != user.pk:
        return CallbackAnswer(
            notice="This confirmation has expired.", edit="Expired: send /stop again if you still want to."
        )
    if not cache.delete(key):
        return CallbackAnswer(notice="Already answered.")  # a double tap: the first one acts
    bot = Bot.objects.filter(pk=pending["bot_id"], owner=user).first()
    if bot is None:
        return CallbackAnswer(notice="That bot no longer exists.", edit="The bot no longer exists.")
    if action == "cancel":
        return CallbackAnswer(notice="Cancelled.", edit=f"Not stopped: {bot.name} keeps running.")
    try:
        result = services.bot_stop(bot=bot, reason="stopped from Telegram")
    except BotError as exc:
        return CallbackAnswer(notice="Stop requested.", edit=f"{bot.name} is stopped; {exc}")
    quote = bot.quote_currency
    return CallbackAnswer(
        notice="Stopped.",
        edit=(
            f"{bot.name} stopped: {result.closed_positions} position(s) closed, {result.canceled_orders} order(s) "
            f"canceled, realized PnL after fees {money(result.realized_pnl, currency=quote)}."
        ),
    )


# --- python-telegram-bot wiring --------------------------------------------------------------------


def _sync(function: Callable[..., Any]) -> Callable[..., Any]:
    """Run Django code from the bot's event loop: in a thread, with fresh database connections."""

    def run(**kwargs: Any) -> Any:
        close_old_connections()
        try:
            return function(**kwargs)
        finally:
            # Commands are rare: a long-lived poller holds no idle PostgreSQL connection meanwhile.
            connections.close_all()

    return sync_to_async(run, thread_sensitive=True)


async def on_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    chat = update.effective_chat
    if message is None or chat is None or not message.text:
        return
    sender = update.effective_user
    replies: list[Reply] = await _sync(handle_text)(
        chat_id=chat.id,
        telegram_user_id=sender.id if sender else None,
        title=chat.title or chat.username or chat.first_name or "",
        text=message.text,
    )
    for reply in replies:
        markup = None
        if reply.buttons:
            markup = InlineKeyboardMarkup(
                [[InlineKeyboardButton(label, callback_data=data) for label, data in reply.buttons]]
            )
        await message.reply_text(reply.text, reply_markup=markup, disable_web_page_preview=True)


async def on_callback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    chat = update.effective_chat
    if query is None or chat is None or not query.data:
        return
    answer: CallbackAnswer = await _sync(handle_callback)(
        chat_id=chat.id, telegram_user_id=query.from_user.id if query.from_user else None, data=query.data
    )
    if not answer.notice and not answer.edit:
        return  # an unlinked chat: no answer at all
    await query.answer(answer.notice or None)
    if answer.edit:
        await query.edit_message_text(answer.edit)


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    # The token is in every request URL: log the error's type and text only, never a URL.
    from alerts.channels.telegram import scrub

    error = context.error
    logger.error("telegram update failed: %s: %s", type(error).__name__, scrub(str(error)))


async def _remember_username(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    # The dashboard's link (t.me/<username>?start=CODE) needs the bot's name; getMe gave it.
    username = application.bot.username
    await sync_to_async(cache.set)(USERNAME_CACHE_KEY, username, None)
    logger.info("telegram bot @%s is polling for commands", username)


def build_application(
    *, token: str | None = None, base_url: str | None = None
) -> Application[Any, Any, Any, Any, Any, Any]:
    """The bot's Application: handlers wired, pointed at TELEGRAM_API_BASE_URL."""
    timeout = float(settings.ALERT_TELEGRAM_TIMEOUT_SECONDS)
    application = (
        Application.builder()
        .token(token or settings.TELEGRAM_BOT_TOKEN)
        .base_url(base_url or settings.TELEGRAM_API_BASE_URL)
        .request(HTTPXRequest(connect_timeout=timeout, read_timeout=timeout, write_timeout=timeout))
        # Long polling holds the request open up to its timeout (below): read longer than that.
        .get_updates_request(HTTPXRequest(connect_timeout=timeout, read_timeout=timeout + 40))
        .post_init(_remember_username)
        .build()
    )
    application.add_handler(MessageHandler(filters.TEXT, on_message))
    application.add_handler(CallbackQueryHandler(on_callback))
    application.add_error_handler(on_error)
    return application


def bot_username() -> str | None:
    """The running bot's @name once the polling process has started (for the dashboard's link)."""
    value = cache.get(USERNAME_CACHE_KEY)
    return str(value) if value else None
