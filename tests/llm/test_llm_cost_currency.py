"""The LLM bill of a BTC-quoted bot: each call converted into BTC at the dollar rate of its market
time (recorded on the call), and the bot's net figures right to the satoshi."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from bots.cycle import run_cycle
from bots.models import Bot, Cycle, LLMCall
from bots.performance import bot_performance, leaderboard
from marketdata.feeds import get_feed
from tests.factories import BotFactory
from tests.llm import protocols
from tests.llm.conftest import point_at
from tests.llm.wire import WireServer
from trading.models import EquitySnapshot

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

PROTO = protocols.ANTHROPIC  # 3 / 15 USD per million tokens
SATOSHI = Decimal("0.00000001")


@pytest.fixture
def btc_settings(llm_settings: Any, wire: WireServer, redis_client: Any) -> Any:
    point_at(llm_settings, PROTO, wire)
    llm_settings.MARKET_DATA_FEED = "replay"
    # Binance's recording has no BTC/USD(T) market: the rate comes from Coinbase's BTC/USD.
    llm_settings.LLM_COST_RATE_EXCHANGES = ["coinbase"]
    yield llm_settings
    redis_client.delete(f"ta:llm:ratelimit:{PROTO.provider}:{PROTO.model}")


def _answer(action: str) -> str:
    return json.dumps(
        {
            "market_summary": "ETH/BTC drifts.",
            "actions": [
                {
                    "symbol": "ETH/BTC",
                    "reasoning": "Momentum turned up." if action == "open_long" else "Nothing new.",
                    "action": action,
                    "size_pct": 10,
                    "leverage": 1,
                    "confidence": 0.6,
                    "invalidation": "A close below the 20-period EMA.",
                }
            ],
        }
    )


def test_btc_quoted_llm_bot_net_figures_to_the_satoshi(btc_settings: Any, wire: WireServer) -> None:
    bot: Bot = BotFactory(
        provider=PROTO.provider,
        model=PROTO.model,
        status=Bot.Status.ACTIVE,
        exchange="binance",
        symbols=["ETH/BTC"],
        timeframe="5m",
        starting_capital=Decimal(1),
    )
    wire.queue(
        PROTO.ok(_answer("open_long"), input_tokens=1200, output_tokens=300),
        PROTO.ok(_answer("hold"), input_tokens=2000, output_tokens=100),
    )
    # Two cycles either side of an hour of market time (xx:55, then xx+1:00): each call has the
    # rate of its own hour.
    feed = get_feed()
    slot = timezone.now().replace(microsecond=0)
    while feed.market_time(exchange="binance", symbol="ETH/BTC", timeframe="5m", slot=slot).minute != 55:
        slot += timedelta(seconds=15)
    for n in range(2):
        cycle = run_cycle(bot_id=bot.pk, slot=slot + timedelta(seconds=15 * n))
        assert cycle.status == Cycle.Status.COMPLETED, cycle.error

    calls = list(LLMCall.objects.filter(bot=bot).select_related("cycle").order_by("created_at", "pk"))
    assert [c.cost for c in calls] == [Decimal("0.0081"), Decimal("0.0075")]
    assert [c.cycle.market_time.minute for c in calls] == [55, 0]
    assert calls[0].usd_rate != calls[1].usd_rate
    for call in calls:
        # The rate of the call's market time: Coinbase's BTC/USD 1h candle holding it.
        [candle] = feed.fetch_ohlcv(
            exchange="coinbase", symbol="BTC/USD", timeframe="1h", until=call.cycle.market_time, limit=1
        )
        assert call.quote_currency == "BTC"
        assert call.usd_rate == (Decimal(1) / candle.close).quantize(Decimal("1e-12"))
        assert call.rate_source.startswith("coinbase BTC/USD 1h close of ")
        assert call.cost_quote == (call.cost * call.usd_rate).quantize(Decimal("1e-12"))
        # About 0.8 cents at some 10,000 USD a bitcoin: below a satoshi per cent, not 0.008 BTC.
        assert Decimal("1e-8") < call.cost_quote < Decimal("0.000002")

    bot.refresh_from_db()
    bill_btc = sum((c.cost_quote for c in calls), Decimal(0))
    assert bot.llm_cost_quote_total == bill_btc and bot.llm_cost_unconverted_total == 0
    latest = EquitySnapshot.objects.filter(bot=bot).latest("time")
    assert latest.llm_cost_quote == bill_btc
    expected_net = latest.equity - Decimal(1) - bill_btc

    performance = bot_performance(bot=bot, period="all")
    assert performance.quote_currency == "BTC"
    assert performance.llm_cost == Decimal("0.0156") and performance.llm_cost_quote == bill_btc
    assert performance.net_pnl == expected_net
    assert performance.net_pnl.quantize(SATOSHI) == expected_net.quantize(SATOSHI)
    assert performance.net_return_pct == (expected_net / Decimal(1) * 100).quantize(Decimal("0.0001"))
    # The old bug: dollars subtracted from bitcoins would have made this about -0.0156 BTC.
    assert abs(performance.net_pnl - (latest.equity - 1)) < Decimal("0.000004")

    [row] = leaderboard(user=bot.owner, period="all").rows
    assert row.rank == 1 and row.performance.net_pnl == expected_net
