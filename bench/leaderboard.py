"""Benchmark: process CPU of the leaderboard of 1,000 bots with 10,000 equity marks each.

Fills a throwaway PostgreSQL test database (DATABASE_URL, default the local server) with one user's
bots, all started together like an arena season: 600 on 5m candles marked once a candle (the
replay's pace, 35 days of market) and 400 on 1h candles marked every 3 minutes (a live bot, 21
days), across 10 markets, each with a completed cycle and 20 round trips. Then computes the
leaderboard (`bots.performance.leaderboard`: the queries, the grid, the statistics and 1,000
stationary-bootstrap replicates per bot and statistic) and prints:

- process CPU (`time.process_time`, every thread of this process; the database server's own CPU
  is not in it) and wall time of a warm call, the median of a few;
- how much of the CPU is the statistics and bootstrap alone (`trading.statistics.summarise`);
- the number of queries and of grid rows read.

    .venv/bin/python bench/leaderboard.py [--bots 1000] [--marks 10000] [--period all]
"""

from __future__ import annotations

import argparse
import os
import statistics as stats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402

GRID_LEVEL_SQL = " + ".join(
    f"((({{clock}} - {origin}) / {p}) <> (({{prev}} - {origin}) / {p}))::int"
    for p, origin in [
        (60, 0),
        (300, 0),
        (900, 0),
        (1800, 0),
        (3600, 0),
        (7200, 0),
        (14400, 0),
        (43200, 0),
        (86400, 0),
        (604800, 4 * 86400),
    ]
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bots", type=int, default=1000)
    parser.add_argument("--marks", type=int, default=10_000)
    parser.add_argument("--period", default="all")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keepdb", action="store_true", help="keep the filled database for the next run")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of one call")
    args = parser.parse_args()

    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=not args.keepdb, keepdb=args.keepdb)
    try:
        user = get_user_model().objects.filter(username="bench").first()
        if user is None:
            user = fill(bots=args.bots, marks=args.marks)
        measure(user=user, period=args.period, runs=args.runs)
        if args.profile:
            profile(user=user, period=args.period)
    finally:
        if not args.keepdb:
            connection.creation.destroy_test_db(old_name, verbosity=0)


def fill(*, bots: int, marks: int) -> object:
    started = time.time()
    user = get_user_model().objects.create_user(username="bench", password="bench-pw-123")
    with connection.cursor() as cursor:
        # Bots: 60 % on 5m candles (one mark per candle), 40 % on 1h candles (a mark every 3 min).
        cursor.execute(
            """
            INSERT INTO bots_bot (owner_id, name, provider, model, exchange, symbols, timeframe, starting_capital,
                max_position_pct, max_leverage, max_exposure_pct, max_trades_per_day, daily_loss_limit_pct,
                max_drawdown_pct, status, status_reason, mode, live_confirmed, interval_seconds, lease_owner, cash,
                peak_equity, day_start_equity, consecutive_failures, llm_cost_total, llm_cost_quote_total,
                llm_cost_unconverted_total, llm_input_tokens_total, llm_output_tokens_total, created_at, updated_at)
            SELECT %s, 'bench-' || b, CASE WHEN b %% 4 = 0 THEN 'baseline' ELSE 'openai' END,
                'model-' || (b %% 7), 'binance', jsonb_build_array('C' || (b %% 10) || '/USDT'),
                CASE WHEN b %% 5 < 3 THEN '5m' ELSE '1h' END, 10000, 20, 3, 100, 20, 5, 20, 'active', '', 'paper',
                false, 180, '', 10000, 10000, 10000, 0, 0, 0, 0, 0, 0, now(), now()
            FROM generate_series(1, %s) b
            """,
            [user.pk, bots],
        )
        cursor.execute(
            """
            INSERT INTO bots_cycle (bot_id, slot, kind, status, attempts, started_at, snapshot_hash, prompt_version,
                prompt, raw_output, decision_error, timings, input_tokens, output_tokens, llm_cost, llm_latency_ms,
                error)
            SELECT id, now() - interval '40 days', 'trade', 'completed', 1, now(), '', '', '', '', '', '{}', 0, 0, 0,
                0, '' FROM bots_bot
            """
        )
        # Marks: market seconds from 2026-01-01; equity a deterministic wave plus a drift per bot.
        level = GRID_LEVEL_SQL.format(clock="m.clock", prev="(m.clock - m.step)")
        cursor.execute(
            f"""
            INSERT INTO trading_equitysnapshot (bot_id, time, market_time, market_clock, grid_level, equity, cash,
                unrealized_pnl, realized_pnl, fees, llm_cost, llm_cost_quote, llm_cost_unconverted, benchmark)
            SELECT m.bot_id, now() - (%s - m.i) * interval '3 minutes', to_timestamp(m.clock), m.clock,
                CASE WHEN m.i = 0 THEN 10 ELSE {level} END,
                m.equity, m.equity, 0, 0, 0, m.i * 0.0001, m.i * 0.0001, 0, m.bench
            FROM (
                SELECT b.id AS bot_id, i,
                    CASE WHEN b.timeframe = '5m' THEN 1767225600 + i * 300
                         ELSE 1767225600 + (i * 180) / 3600 * 3600 END AS clock,
                    CASE WHEN b.timeframe = '5m' THEN 300 ELSE (i * 180) / 3600 * 3600 - ((i - 1) * 180) / 3600 * 3600
                        END AS step,
                    round((10000 * (1 + 0.03 * sin(i / 97.0 + b.id) + 0.00001 * i * ((b.id %% 9) - 4)
                        + 0.002 * sin(i * 1.7 + b.id * 3)))::numeric, 6) AS equity,
                    round((1 + 0.05 * sin(i / 211.0 + (b.id %% 10)))::numeric, 8) AS bench
                FROM bots_bot b, generate_series(0, %s - 1) i
            ) m
            """,  # noqa: S608 - the grid-level expression is this module's constant, not input
            [marks, marks],
        )
        cursor.execute(
            """
            INSERT INTO trading_position (bot_id, symbol, side, status, quantity, entry_price, leverage, margin,
                thesis, invalidation, realized_pnl, fees, close_reason, opened_at, closed_at, exit_price)
            SELECT b.id, b.symbols->>0, CASE WHEN k % 3 = 0 THEN 'short' ELSE 'long' END, 'closed', 1, 100, 2, 50,
                'bench', 'bench', (k % 11) - 5, 0.1, 'decision', now() - (k + 2) * interval '1 hour',
                now() - k * interval '1 hour', 101
            FROM bots_bot b, generate_series(1, 20) k
            """
        )
        cursor.execute("ANALYZE")
    print(f"filled {bots} bots × {marks} marks in {time.time() - started:.0f} s")
    return user


def measure(*, user: object, period: str, runs: int) -> None:
    from bots import performance
    from trading import statistics

    performance.leaderboard(user=user, period=period)  # warm: imports, the first query plans
    cpu: list[float] = []
    wall: list[float] = []
    summarise_cpu: list[float] = []
    original = statistics.summarise

    def timed(*args: object, **kwargs: object) -> object:
        start = time.process_time()
        try:
            return original(*args, **kwargs)  # type: ignore[arg-type]
        finally:
            summarise_cpu.append(time.process_time() - start)

    performance.statistics.summarise = timed  # type: ignore[assignment]
    try:
        for _ in range(runs):
            with CaptureQueriesContext(connection) as queries:
                c0, w0 = time.process_time(), time.perf_counter()
                board = performance.leaderboard(user=user, period=period)
                cpu.append(time.process_time() - c0)
                wall.append(time.perf_counter() - w0)
    finally:
        performance.statistics.summarise = original  # type: ignore[assignment]
    rows = board.rows
    with_ci = sum(1 for r in rows if r.performance.sharpe_ci is not None)
    grids = sorted({r.performance.grid or "-" for r in rows})
    periods = sorted(r.performance.periods for r in rows)
    print(f"leaderboard period={period}: {len(rows)} bots ranked, {len(board.models)} models, {with_ci} with intervals")
    print(f"grids {', '.join(grids)}; periods per bot median {periods[len(periods) // 2]}, max {periods[-1]}")
    print(f"queries: {len(queries.captured_queries)}")
    for query in sorted(queries.captured_queries, key=lambda q: -float(q["time"]))[:3]:
        print(f"  {float(query['time']):.3f} s  {query['sql'][:150]}")
    print(f"process CPU: median {stats.median(cpu):.3f} s (runs: {', '.join(f'{c:.3f}' for c in cpu)})")
    print(f"  of which statistics + bootstrap: median {stats.median(summarise_cpu):.3f} s")
    print(f"wall time: median {stats.median(wall):.3f} s (the database's own work included)")


def profile(*, user: object, period: str) -> None:
    import cProfile
    import pstats

    from bots import performance

    profiler = cProfile.Profile()
    profiler.runcall(performance.leaderboard, user=user, period=period)
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)


if __name__ == "__main__":
    main()
