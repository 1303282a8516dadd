"""Equity marks outside a cycle: the account right after a stop command closed its positions.

A cycle marks the account once per slot; a stop closes positions between cycles and no cycle
follows it, so without this mark the books' last equity point would predate the stop and the
figures on marks (leaderboard, arena, performance) would miss the close.
"""

from __future__ import annotations

from decimal import Decimal

from bots.models import Bot
from marketdata.models import Candle
from trading.books import DatabaseBooks
from trading.models import Fill


def stop_mark_record(*, bot: Bot) -> None:
    """Mark the account at the candle the stop's closing fills priced at (their closes give the
    buy-and-hold benchmark its value at the same time)."""
    market_time = (
        Fill.objects.filter(bot=bot, market_time__isnull=False)
        .order_by("-created_at", "-pk")
        .values_list("market_time", flat=True)
        .first()
    )
    prices: dict[str, Decimal] = {}
    if market_time is not None:
        prices = dict(
            Candle.objects.filter(
                exchange=bot.exchange, symbol__in=list(bot.symbols), timeframe=bot.timeframe, open_time=market_time
            ).values_list("symbol", "close")
        )
    DatabaseBooks(bot_id=bot.pk).record_equity(
        prices=prices,
        llm_cost=bot.llm_cost_total,
        llm_cost_quote=bot.llm_cost_quote_total,
        llm_cost_unconverted=bot.llm_cost_unconverted_total,
        market_time=market_time,
    )
