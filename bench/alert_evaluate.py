"""The alert rule evaluator at scale: one run over N bots of N/5 users, each with the default rules.

    DATABASE_URL=postgres://... REDIS_URL=redis://... SECRET_KEY=... FIELD_ENCRYPTION_KEY=... \
        .venv/bin/python bench/alert_evaluate.py [--bots 10000] [--runs 3]

It creates throwaway users (the default rules come with each account: drawdown, volatility,
failure rate, unusual activity, ...), their active bots with two equity points and a few cycles
each, then runs `alerts.evaluation.evaluate` `--runs` times and prints, per run, the wall time,
this process's CPU time (the database's own work is not in it) and the number of queries. The
first run is the one that alerts (the bots start in a drawdown); later runs find the conditions
still holding and send nothing. Everything created is deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingagent.settings")

BOTS_PER_USER = 5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bots", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="print the first run's cProfile top 25")
    args = parser.parse_args()

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from alerts.evaluation import LOCK_KEY, evaluate
    from alerts.models import Alert
    from bots.models import Bot, Cycle
    from trading.models import EquitySnapshot, TradingAccount

    call_command("migrate", verbosity=0)
    tag = uuid.uuid4().hex[:6]
    users = max(1, args.bots // BOTS_PER_USER)
    started = time.perf_counter()
    User = get_user_model()
    owners = [User.objects.create_user(username=f"evalbench-{tag}-{n}") for n in range(users)]  # defaults via signal
    now = timezone.now()
    bots = Bot.objects.bulk_create(
        [
            Bot(
                owner=owner,
                name=f"b{n}",
                model="ema_rsi",
                symbols=["BTC/USD"],
                status=Bot.Status.ACTIVE,
            )  # fmt: skip
            for owner in owners
            for n in range(BOTS_PER_USER)
        ]
    )
    TradingAccount.objects.bulk_create(
        [
            TradingAccount(
                bot=bot,
                owner_id=bot.owner_id,
                cash=Decimal(10000),
                peak_equity=Decimal(12000),
                day_start_equity=Decimal(10000),
                day_start_date=now.date(),
            )
            for bot in bots
        ]
    )
    EquitySnapshot.objects.bulk_create(
        [
            EquitySnapshot(bot=bot, time=now - timedelta(minutes=minutes), equity=Decimal(equity), cash=Decimal(equity))
            for bot in bots
            for minutes, equity in ((120, "10500"), (1, "10000"))  # 16.7 % below the 12,000 peak
        ]
    )
    Cycle.objects.bulk_create(
        [
            Cycle(bot=bot, slot=now - timedelta(minutes=3 * k + 1), status=Cycle.Status.COMPLETED, started_at=now)
            for bot in bots
            for k in range(4)
        ]
    )
    print(f"set up {len(bots)} bots of {users} users in {time.perf_counter() - started:.0f} s")
    try:
        for run in range(1, args.runs + 1):
            cache.delete(LOCK_KEY)
            connection.queries_log.clear()
            wall, cpu = time.perf_counter(), time.process_time()
            with CaptureQueriesContext(connection) as queries:
                if args.profile and run == 1:
                    import cProfile
                    import pstats

                    profiler = cProfile.Profile()
                    result = profiler.runcall(evaluate)
                    pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
                else:
                    result = evaluate()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            print(f"run {run}: {wall * 1000:8.0f} ms wall, {cpu * 1000:8.0f} ms CPU (this process), "
                  f"{len(queries):6d} queries, alerts raised: {result}")  # fmt: skip
        drawdowns = Alert.objects.filter(owner__username__startswith=f"evalbench-{tag}-", event="drawdown").count()
        print(f"drawdown alerts: {drawdowns} (one per bot, the first run only)")
    finally:
        started = time.perf_counter()
        User.objects.filter(username__startswith=f"evalbench-{tag}-").delete()
        print(f"cleaned up in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
