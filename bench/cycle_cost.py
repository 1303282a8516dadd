"""Benchmark: CPU time and database queries of one trading cycle.

Runs a few hundred cycles of baseline bots on the replay feed and the paper broker against a
throwaway PostgreSQL test database (DATABASE_URL, default the local server) and prints:
- the median / p90 CPU time per cycle, from the stage timings each cycle records (`cpu_ms`);
- the number of database queries of one cycle, for 1 and for 2 symbols, flat and with a position.

    .venv/bin/python bench/cycle_cost.py [--cycles 300]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402

START = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=300)
    args = parser.parse_args()

    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        run(args.cycles)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def run(cycles: int) -> None:
    from bots.cycle import run_cycle
    from bots.models import Cycle
    from bots.services import bot_create, bot_start

    owner = get_user_model().objects.create_user(username="bench", password="bench-pw-123")
    specs = [("ema_rsi", ["BTC/USD"], "coinbase", "1h"), ("buy_and_hold", ["XRP/USDT:USDT"], "binanceusdm", "5m")]
    bots = []
    for i, (model, symbols, exchange, timeframe) in enumerate(specs):
        bot = bot_create(
            owner=owner,
            data={
                "name": f"bench-{i}",
                "model": model,
                "symbols": symbols,
                "exchange": exchange,
                "timeframe": timeframe,
                "interval_seconds": 180,
                "max_trades_per_day": 1000,
                "starting_capital": Decimal(10000),
            },
        )
        bots.append(bot_start(bot=bot))

    per_bot = cycles // len(bots)
    for n in range(per_bot):
        slot = START + timedelta(seconds=180 * n)
        for bot in bots:
            run_cycle(bot_id=bot.pk, slot=slot)
    done = Cycle.objects.filter(status="completed")
    cpu = sorted(c.timings["cpu_ms"] for c in done)
    print(f"cycles completed: {len(cpu)} of {per_bot * len(bots)}")
    print(
        f"CPU per cycle: median {statistics.median(cpu):.1f} ms, p90 {cpu[int(len(cpu) * 0.9)]:.1f} ms, max {cpu[-1]} ms"
    )
    for stage in ("market_data", "exits", "decision", "risk", "execution", "record"):
        values = [c.timings.get(stage, 0) for c in done]
        print(f"  wall {stage:<12} median {statistics.median(values):.1f} ms")

    # Queries of one cycle: a flat bot (hold) and a bot holding a position (buy_and_hold).
    for model, symbols, exchange, timeframe in [
        ("hold", ["BTC/USD"], "coinbase", "1h"),
        ("hold", ["ETH/BTC", "ADA/BTC"], "binance", "5m"),
        ("buy_and_hold", ["BTC/USD"], "coinbase", "1h"),
        ("buy_and_hold", ["ETH/BTC", "ADA/BTC"], "binance", "5m"),
    ]:
        bot = bot_start(
            bot=bot_create(
                owner=owner,
                data={
                    "name": f"q-{model}-{len(symbols)}",
                    "model": model,
                    "symbols": symbols,
                    "exchange": exchange,
                    "timeframe": timeframe,
                    "interval_seconds": 180,
                    "starting_capital": Decimal(10000),
                },
            )
        )
        slot = START + timedelta(days=30)
        run_cycle(bot_id=bot.pk, slot=slot)  # first cycle opens (buy_and_hold) and warms caches
        with CaptureQueriesContext(connection) as ctx:
            run_cycle(bot_id=bot.pk, slot=slot + timedelta(seconds=180))
        print(
            f"queries of one cycle: {model:<13} {len(symbols)} symbol(s), {bot.positions.filter(status='open').count()} open: {len(ctx.captured_queries)}"
        )


if __name__ == "__main__":
    main()
