"""Client order ids: the idempotency key of every order, real money included. One scheme, here.

An id is derived from what the order is, never drawn at random, so a retried or duplicated task
computes the same id, finds the order it wrote before (`Order.client_order_id` is unique) and, for
a live order, looks it up on the exchange instead of placing a second one. Ids fit the 36
characters Binance allows.

- A cycle's order: `ta-<bot>-<slot epoch>-<leg>`, the leg naming the symbol and the intent.
- A position's exit (stops, targets, liquidation, close-outs): `ta-<bot>-p<position>-x<attempt>`;
  a position is closed at most once, and the attempt grows only when an earlier exit was refused.
- A live open's protective orders on the exchange: the open's id + `-sl` / `-tp`.
"""

from __future__ import annotations

import hashlib
from datetime import datetime


def order_leg(*, symbol: str, intent: str) -> str:
    """The leg part of a cycle's order id: stable for a symbol whatever the bot's symbol list."""
    digest = hashlib.sha1(symbol.encode(), usedforsecurity=False).hexdigest()[:6]
    return f"{digest}{'c' if intent == 'close' else 'o'}"


def client_order_id(*, bot_id: int, slot: datetime, leg: str) -> str:
    """Deterministic id of one order leg of one bot's slot (≤ 36 chars, as Binance allows)."""
    return f"ta-{bot_id}-{int(slot.timestamp())}-{leg}"


def exit_id_prefix(*, bot_id: int, position_id: int) -> str:
    """What every exit order id of this position starts with (the attempts differ after it)."""
    return f"ta-{bot_id}-p{position_id}-x"


def exit_client_order_id(*, bot_id: int, position_id: int, attempt: int = 0) -> str:
    """A position is closed at most once, so its exit leg is keyed by the position (and by the
    attempt, when an earlier exit order of it was rejected or canceled)."""
    return f"{exit_id_prefix(bot_id=bot_id, position_id=position_id)}{attempt}"


def protective_client_order_id(*, open_client_order_id: str, leg: str) -> str:
    """A live open's stop-loss (`sl`) or take-profit (`tp`) order resting on the exchange."""
    return f"{open_client_order_id}-{leg}"
