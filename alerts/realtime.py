"""The only module that talks to the channel layer: typed events for the WebSocket streams.

Every event goes to two groups: the bot's (`bot.<id>`) and its owner's dashboard (`user.<id>`).
Events are sent after the surrounding transaction commits (`transaction.on_commit`), so no browser
ever sees data that was rolled back; outside a transaction they are sent at once.

It also closes streams whose authentication has ended (a logout, a deactivated or deleted user):
see `revoke_session` and `revoke_account`, called from the signal handlers in `alerts.signals`.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypedDict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

if TYPE_CHECKING:
    from alerts.models import Alert
    from bots.models import Bot, Cycle
    from trading.models import EquitySnapshot, Fill, Order, Position

logger = logging.getLogger(__name__)

# The consumer's handler name: channel layer messages of type "stream.event" call `stream_event`.
MESSAGE_TYPE = "stream.event"


def bot_group(bot_id: int) -> str:
    return f"bot.{bot_id}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


# Closing streams whose authentication has ended: the consumer's handler is `auth_revoked`.
REVOKE_MESSAGE_TYPE = "auth.revoked"


def account_group(user_id: int) -> str:
    """Every stream a user has open, whatever it is a stream of (closed when the account ends)."""
    return f"account.{user_id}"


def session_group(session_key: str) -> str:
    """The streams opened with one login session (closed when it logs out).

    A digest, not the key: group names are stored in Redis, and a session key is a credential.
    """
    return "session." + hashlib.sha256(session_key.encode()).hexdigest()[:40]


def _revoke(group: str) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, {"type": REVOKE_MESSAGE_TYPE})
    except Exception:
        # A logout or a deactivation must not fail because Redis is away; the streams then end
        # with their connection (and a token's stream at the token's expiry at the latest).
        logger.exception("could not close the streams of %s", group.partition(".")[0])


def revoke_session(session_key: str) -> None:
    """Close the streams of a login session that has ended (logout)."""
    _revoke(session_group(session_key))


def revoke_account(user_id: int) -> None:
    """Close every stream of a user whose account was deactivated or deleted (after commit)."""
    transaction.on_commit(lambda: _revoke(account_group(user_id)))


class EventEnvelope(TypedDict):
    event: str  # cycle / order / fill / position / equity / bot_status / alert
    bot_id: int | None
    data: dict[str, Any]


def _num(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


_batch = threading.local()


@contextmanager
def batched() -> Iterator[None]:
    """Send the events published (and committed) inside the block together, at its end.

    One event loop and one connection for all of them instead of one per event
    (`async_to_sync` per event costs both): for code that raises many events in a row, such as
    the alert evaluator after a market-wide drop.
    """
    outer = getattr(_batch, "messages", None)
    if outer is not None:
        yield  # already batching: the outermost block sends
        return
    _batch.messages = []
    try:
        yield
    finally:
        messages, _batch.messages = _batch.messages, None
        if messages:
            _send_all(messages)


def _messages(*, owner_id: int, bot_id: int | None, envelope: EventEnvelope) -> list[tuple[str, dict[str, Any]]]:
    message = {"type": MESSAGE_TYPE, "payload": envelope}
    groups = [user_group(owner_id)] + ([bot_group(bot_id)] if bot_id is not None else [])
    return [(group, message) for group in groups]


def _send_all(messages: list[tuple[str, dict[str, Any]]]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return

    async def send() -> None:
        for group, message in messages:
            await layer.group_send(group, message)

    try:
        async_to_sync(send)()
    except Exception:
        # Live updates are best effort: the data is committed and the page can reload it.
        logger.exception("could not publish %d events", len(messages))


def _send(*, owner_id: int, bot_id: int | None, envelope: EventEnvelope) -> None:
    pending = getattr(_batch, "messages", None)
    if pending is not None:
        pending.extend(_messages(owner_id=owner_id, bot_id=bot_id, envelope=envelope))
        return
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        for group, message in _messages(owner_id=owner_id, bot_id=bot_id, envelope=envelope):
            async_to_sync(layer.group_send)(group, message)
    except Exception:
        # Live updates are best effort: the data is committed and the page can reload it.
        logger.exception("could not publish %s event for bot %s", envelope["event"], bot_id)


def publish(*, owner_id: int, bot_id: int | None, event: str, data: dict[str, Any]) -> None:
    """Send an event to the bot's and the owner's streams once the current transaction commits."""
    envelope: EventEnvelope = {"event": event, "bot_id": bot_id, "data": data}
    transaction.on_commit(lambda: _send(owner_id=owner_id, bot_id=bot_id, envelope=envelope))


# --- Typed payloads ----------------------------------------------------------------------------


def cycle_payload(cycle: Cycle) -> dict[str, Any]:
    decision = cycle.decision or {}
    return {
        "id": cycle.pk,
        "slot": _iso(cycle.slot),
        "status": cycle.status,
        "kind": cycle.kind,
        "market_time": _iso(cycle.market_time),
        "market_summary": decision.get("market_summary", ""),
        "actions": [
            {
                "symbol": a.get("symbol"),
                "action": a.get("action"),
                "confidence": a.get("confidence"),
                "reasoning": a.get("reasoning", ""),
            }
            for a in decision.get("actions", [])
        ],
        "decision_error": cycle.decision_error,  # why the model's output was rejected (the bot held)
        "error": cycle.error,
        "llm_cost": _num(cycle.llm_cost),
        "timings": cycle.timings,
    }


def order_payload(order: Order) -> dict[str, Any]:
    return {
        "id": order.pk,
        "client_order_id": order.client_order_id,
        "symbol": order.symbol,
        "side": order.side,
        "type": order.type,
        "intent": order.intent,
        "status": order.status,
        "quantity": _num(order.quantity),
        "filled_quantity": _num(order.filled_quantity),
        "average_price": _num(order.average_price),
        "fee": _num(order.fee),
        "created_at": _iso(order.created_at),
    }


def fill_payload(fill: Fill) -> dict[str, Any]:
    return {
        "id": fill.pk,
        "order_id": fill.order_id,
        "symbol": fill.symbol,
        "side": fill.side,
        "quantity": _num(fill.quantity),
        "price": _num(fill.price),
        "fee": _num(fill.fee),
        "market_time": _iso(fill.market_time),
        "created_at": _iso(fill.created_at),
    }


def position_payload(position: Position, *, unrealized_pnl: Decimal | None = None) -> dict[str, Any]:
    return {
        "id": position.pk,
        "symbol": position.symbol,
        "side": position.side,
        "status": position.status,
        "quantity": _num(position.quantity),
        "entry_price": _num(position.entry_price),
        "leverage": _num(position.leverage),
        "margin": _num(position.margin),
        "stop_loss": _num(position.stop_loss),
        "take_profit": _num(position.take_profit),
        "unrealized_pnl": _num(unrealized_pnl),
        "realized_pnl": _num(position.realized_pnl),
        "exit_price": _num(position.exit_price),
        "close_reason": position.close_reason,
        "opened_at": _iso(position.opened_at),
        "closed_at": _iso(position.closed_at),
    }


def equity_payload(snapshot: EquitySnapshot) -> dict[str, Any]:
    return {
        "time": _iso(snapshot.time),
        "market_time": _iso(snapshot.market_time),
        "equity": _num(snapshot.equity),
        "cash": _num(snapshot.cash),
        "unrealized_pnl": _num(snapshot.unrealized_pnl),
        "realized_pnl": _num(snapshot.realized_pnl),
        "fees": _num(snapshot.fees),
        "llm_cost": _num(snapshot.llm_cost),
    }


def bot_status_payload(bot: Bot) -> dict[str, Any]:
    return {"id": bot.pk, "name": bot.name, "status": bot.status, "reason": bot.status_reason}


def alert_payload(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.pk,
        "kind": alert.kind,
        "severity": alert.severity,
        "message": alert.message,
        "bot_id": alert.bot_id,
        "created_at": _iso(alert.created_at),
    }


# --- Publishers (call inside the transaction that writes the row) --------------------------------


def publish_cycle(cycle: Cycle, *, owner_id: int) -> None:
    publish(owner_id=owner_id, bot_id=cycle.bot_id, event="cycle", data=cycle_payload(cycle))


def publish_order(order: Order, *, owner_id: int) -> None:
    publish(owner_id=owner_id, bot_id=order.bot_id, event="order", data=order_payload(order))


def publish_fill(fill: Fill, *, owner_id: int) -> None:
    publish(owner_id=owner_id, bot_id=fill.bot_id, event="fill", data=fill_payload(fill))


def publish_position(position: Position, *, owner_id: int, unrealized_pnl: Decimal | None = None) -> None:
    publish(
        owner_id=owner_id,
        bot_id=position.bot_id,
        event="position",
        data=position_payload(position, unrealized_pnl=unrealized_pnl),
    )


def publish_equity(snapshot: EquitySnapshot, *, owner_id: int) -> None:
    publish(owner_id=owner_id, bot_id=snapshot.bot_id, event="equity", data=equity_payload(snapshot))


def publish_bot_status(bot: Bot) -> None:
    publish(owner_id=bot.owner_id, bot_id=bot.pk, event="bot_status", data=bot_status_payload(bot))


def publish_alert(alert: Alert) -> None:
    publish(owner_id=alert.owner_id, bot_id=alert.bot_id, event="alert", data=alert_payload(alert))
