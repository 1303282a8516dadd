"""Scale bench: N bots on real Celery workers and beat, PostgreSQL and Redis, for a bounded time.

    .venv/bin/python bench/scale.py --bots 1000 --kind baseline --workers 1 --concurrency 16 --minutes 6
    .venv/bin/python bench/scale.py --bots 1000 --kind llm --llm-latency 2 --minutes 6 --json out.json

What runs (all started and stopped by the bench, see bench/harness.py):
- a private PostgreSQL cluster (pg_stat_statements preloaded) with a fresh database `bench_scale`,
  or `--database-url postgres://.../bench_x` on a running server (dropped and recreated);
- a private redis-server (`--save "" --appendonly no`) on a port of 6420-6429;
- `--workers` Celery workers and one beat exactly as the launcher and compose run them (threads
  pool, `-Q cycles,default`, LOG_LEVEL info, DEBUG off), through bench/celery_bench.py, which is
  the platform's own Celery app plus counters;
- for `--kind llm`, bench/llm_server.py: an OpenAI-compatible server answering every request
  after `--llm-latency` seconds; the bots use the `openai_compatible` provider through the
  official SDK. LLM_RATE_LIMIT_PER_MINUTE is raised to 1,000,000 so the shared limiter (still
  consulted in Redis on every call) never holds a bot back.

The schedule: N active bots (rotation `--mix`, default the demo's six baselines over the recorded
markets) all get their first slot at the next boundary S0 of the `--interval` grid (the
dispatcher's grid: every bot with that interval is due at the same instant, the platform's worst
case); the run covers K = ceil(minutes*60/interval) slots S0 .. S0+(K-1)*interval. At S0+K*interval
the schedule ends: the bench sets `next_cycle_at` to NULL for every bot already claimed for a later
slot (repeatedly, while late claims of the window's slots still happen), and waits up to `--drain`
seconds for the queue to empty and the running cycles to finish. Then it stops everything.

What it prints (every figure per cycle divides by the cycle rows that finished):
- per slot: bots due, cycle rows, completed/failed/skipped, rows started within 60 s, slot lag
  (started_at - slot) p50/p95/max, missed slots (due, no cycle row at the end);
- per minute: cycles finished, the cycles queue's high-water mark, PostgreSQL connections, CPU ms
  per finished cycle;
- CPU per cycle by process, from /proc/<pid>/stat utime+stime deltas between S0 and the end of the
  drain: each worker (split into the cycle tasks' own threads, the dispatcher task's thread and
  the rest of the process: Celery's consumer, publishing threads, heartbeats), beat, PostgreSQL
  (the private cluster: postmaster + reaped backends + live processes, i.e. every backend's CPU
  even though each Celery task opens its own session; with --database-url: that server's whole
  cluster, other users included), Redis; the model server separately (not the platform);
- SQL statements per cycle: as Django sent them (execute_wrapper in the workers, per task) and as
  the server counted them (pg_stat_statements: also BEGIN/COMMIT and session set-up); transactions
  and new sessions per cycle (pg_stat_database);
- connections: PostgreSQL client connections of the bench database (max of 1 s samples), Redis
  clients (max) and Redis connections opened per cycle; storage per cycle row;
- the machine: load average at start and end, how busy both cores were and our processes' share.

Throughput and lag are wall-clock figures: on a shared machine they move with everyone's load.
CPU per cycle, statements and connections do not.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import statistics
import sys
import time
import urllib.request
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import (
    MIXES,
    BenchError,
    GivenPostgres,
    Monitor,
    Platform,
    Postgres,
    PrivatePostgres,
    PrivateRedis,
    Processes,
    fmt,
    free_port,
    install_signal_handlers,
    loadavg,
    log,
    machine_jiffies,
    make_run_dir,
    percentile,
    port_open,
    proc_cpu,
    queue_depths,
    read_stats,
    seed_bots,
    setup_django,
    sleep_until,
    slot_floor,
    table,
    utcnow,
    wait_beat_started,
    wait_for,
    wait_worker_ready,
)

CYCLE_TASK = "bots.tasks.run_trading_cycle"
DISPATCH_TASK = "bots.tasks.dispatch_due_bots"
CPU_SAMPLE_SECONDS = 5
TOP_STATEMENTS = 15
FK_CHECK = re.compile(r"^\s*SELECT \$?\d+ FROM ONLY \S+ x WHERE .* FOR KEY SHARE OF x", re.DOTALL)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/scale.py",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--bots", type=int, default=1000, help="bots to seed (default 1000)")
    parser.add_argument("--kind", choices=("baseline", "llm"), default="baseline")
    parser.add_argument("--mix", choices=sorted(MIXES), default="demo", help="baselines and markets in rotation")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--concurrency", type=int, default=16, help="threads per worker (default 16)")
    parser.add_argument("--minutes", type=float, default=6.0, help="schedule length, rounded up to whole slots")
    parser.add_argument("--interval", type=int, default=180, help="the bots' interval in seconds (default 180)")
    parser.add_argument("--llm-latency", type=float, default=2.0, help="model server latency, s (default 2)")
    parser.add_argument(
        "--drain", type=float, default=None, help="most seconds to wait after the schedule (interval+30)"
    )
    parser.add_argument(
        "--database-url", default="", help="use this server and database (bench_*) instead of a private cluster"
    )
    parser.add_argument("--max-connections", type=int, default=300, help="max_connections of the private cluster")
    parser.add_argument("--redis-port", type=int, default=None, help="port of the private Redis (6420-6429)")
    parser.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="extra setting for the platform"
    )
    parser.add_argument("--json", default="", metavar="PATH", help="also write the figures as JSON ('-' for stdout)")
    parser.add_argument("--keep", action="store_true", help="keep the run directory (logs, stats) and the database")
    args = parser.parse_args(argv)
    problems = []
    if args.bots < 1:
        problems.append("--bots must be at least 1")
    if args.workers < 1 or args.concurrency < 1:
        problems.append("--workers and --concurrency must be at least 1")
    if not 5 <= args.interval <= 86400:
        problems.append("--interval must be 5..86400 seconds (the bots' own bounds)")
    if args.minutes <= 0:
        problems.append("--minutes must be positive")
    if args.llm_latency < 0:
        problems.append("--llm-latency must be >= 0")
    if args.database_url and not args.database_url.rstrip("/").rsplit("/", 1)[-1].startswith("bench_"):
        problems.append("--database-url must name a database starting with bench_ (it is dropped and recreated)")
    for item in args.env:
        if "=" not in item:
            problems.append(f"--env {item!r}: expected KEY=VALUE")
    if problems:
        parser.error("; ".join(problems))
    if args.drain is None:
        args.drain = args.interval + 30.0
    return args


class CpuProbe:
    """CPU seconds of each process of the run, read from /proc."""

    def __init__(self) -> None:
        self.pids: dict[str, int] = {}
        self.postgres: Postgres | None = None

    def __call__(self) -> dict[str, float]:
        values = {name: proc_cpu(pid) for name, pid in self.pids.items()}
        if self.postgres is not None:
            cluster = self.postgres.cluster_cpu()
            if cluster is not None:
                values["postgres"] = cluster
        return values


def pg_counters(postgres: Postgres) -> dict[str, Any]:
    with postgres.connect() as conn:
        row = conn.execute(
            "SELECT xact_commit, xact_rollback, sessions, tup_returned, tup_fetched, tup_inserted, tup_updated, "
            "tup_deleted, pg_database_size(datname) FROM pg_stat_database WHERE datname = %s",
            (postgres.database,),
        ).fetchone()
        names = ("xact_commit", "xact_rollback", "sessions", "tup_returned", "tup_fetched", "tup_inserted",
                 "tup_updated", "tup_deleted", "database_bytes")  # fmt: skip
        counters: dict[str, Any] = dict(zip(names, row, strict=True))
        if postgres.private:
            rows = conn.execute(
                "SELECT s.query, s.calls FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
                "WHERE d.datname = %s",
                (postgres.database,),
            ).fetchall()
            kinds: Counter[str] = Counter()
            for query, calls in rows:
                kinds[statement_kind(query)] += calls
            counters["statements"] = dict(kinds)
            top = sorted(rows, key=lambda row: -row[1])[:TOP_STATEMENTS]
            counters["top_statements"] = [(" ".join(query.split())[:160], calls) for query, calls in top]
    return counters


def statement_kind(query: str) -> str:
    """SELECT, INSERT, BEGIN, ...; FK-CHECK for the foreign-key checks PostgreSQL runs itself (its RI
    triggers' `SELECT 1 FROM ONLY ... FOR KEY SHARE`, which pg_stat_statements lists as top-level)."""
    if FK_CHECK.match(query):
        return "FK-CHECK"
    words = query.lstrip().split(None, 1)
    return words[0].upper() if words else "?"


def pg_reset_statements(postgres: Postgres) -> None:
    if postgres.private:
        with postgres.connect() as conn:
            conn.execute("SELECT pg_stat_statements_reset()")


def redis_counters(client: Any) -> dict[str, int]:
    stats = client.info("stats")
    return {
        "connections_received": int(stats["total_connections_received"]),
        "commands_processed": int(stats["total_commands_processed"]),
    }


def stats_delta(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Sum over processes of (after - before) of the counters bench/celery_bench.py writes."""
    total: dict[str, Any] = {
        "tasks": Counter(),
        "statements": defaultdict(Counter),
        "sessions": Counter(),
        "thread_cpu_seconds": Counter(),
        "per_cycle": Counter(),
        "by_process": {},
    }
    for name, data in after.items():
        old = before.get(name, {})
        proc: dict[str, Any] = {"thread_cpu_seconds": Counter()}
        for task, n in data.get("tasks", {}).items():
            total["tasks"][task] += n - old.get("tasks", {}).get(task, 0)
        for task, kinds in data.get("statements", {}).items():
            for kind, n in kinds.items():
                total["statements"][task][kind] += n - old.get("statements", {}).get(task, {}).get(kind, 0)
        for task, n in data.get("sessions", {}).items():
            total["sessions"][task] += n - old.get("sessions", {}).get(task, 0)
        for task, s in data.get("thread_cpu_seconds", {}).items():
            delta = s - old.get("thread_cpu_seconds", {}).get(task, 0.0)
            total["thread_cpu_seconds"][task] += delta
            proc["thread_cpu_seconds"][task] += delta
        for k, n in data.get("statements_per_cycle_task", {}).items():
            total["per_cycle"][int(k)] += n - old.get("statements_per_cycle_task", {}).get(k, 0)
        total["by_process"][name] = proc
    return total


def histogram_percentile(hist: Counter[int], pct: float) -> int | None:
    n = sum(hist.values())
    if n == 0:
        return None
    rank = max(1, min(n, round(pct / 100 * n + 0.5)))
    seen = 0
    for value in sorted(hist):
        seen += hist[value]
        if seen >= rank:
            return value
    return max(hist)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    install_signal_handlers()
    run_dir = make_run_dir("bench-scale")
    processes = Processes(run_dir)
    state: dict[str, Any] = {}
    outcome = "error"
    try:
        result = run(args, run_dir, processes, state)
        outcome = "ok"
    except BenchError as exc:
        log(f"error: {exc}")
        return 2
    except KeyboardInterrupt:
        outcome = "interrupted"
        log("interrupted: stopping every process")
        return 130
    finally:
        postgres = state.get("postgres")
        processes.cleanup()
        if postgres is not None and not postgres.private and not args.keep:
            postgres.drop_database()
        if args.keep or outcome == "error":
            log(f"run directory kept (logs of every process): {run_dir}")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
    print(render(result))
    if args.json:
        text = json.dumps(result, indent=2, default=str)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    return 0


def run(args: argparse.Namespace, run_dir: Path, processes: Processes, state: dict[str, Any]) -> dict[str, Any]:
    started = time.time()
    load_start = loadavg()
    log(f"run directory {run_dir}; load average {load_start}")
    postgres: Postgres
    if args.database_url:
        postgres = GivenPostgres(args.database_url)
    else:
        private = PrivatePostgres(processes, database="bench_scale", max_connections=args.max_connections)
        log("starting a private PostgreSQL cluster")
        private.start()
        postgres = private
    state["postgres"] = postgres
    postgres.recreate_database()
    redis = PrivateRedis(processes, args.redis_port)
    redis.start()
    log(f"private Redis on port {redis.port}")

    extra_env = dict(item.split("=", 1) for item in args.env)
    llm_proc = None
    if args.kind == "llm":
        llm_port = free_port()
        llm_proc = processes.start(
            "llm-server",
            [sys.executable, "-m", "bench.llm_server", "--port", str(llm_port), "--latency", str(args.llm_latency)],
        )
        wait_for(lambda: port_open(llm_port), timeout=30, what="the model server listening")
        extra_env = {
            "OPENAI_COMPATIBLE_BASE_URL": f"http://127.0.0.1:{llm_port}/v1",
            "LLM_RATE_LIMIT_PER_MINUTE": "1000000",
            **extra_env,
        }
    platform = Platform(database_url=postgres.url(), redis_url=redis.url, run_dir=run_dir, extra_env=extra_env)
    platform.prepare()
    setup_django(platform)
    from django.core.management import call_command
    from django.db import connection

    from bots.models import Bot, Cycle

    log("migrating the bench database")
    call_command("migrate", verbosity=0)
    log(f"seeding {args.bots} {args.kind} bots (mix {args.mix}, interval {args.interval} s)")
    seed_bots(count=args.bots, kind=args.kind, mix=args.mix, interval=args.interval)
    connection.close()

    workers = [platform.start_worker(processes, f"w{i + 1}", args.concurrency) for i in range(args.workers)]
    beat = platform.start_beat(processes, "b1")
    for worker in workers:
        wait_worker_ready(worker)
    wait_beat_started(beat)
    log(f"{len(workers)} worker(s) x {args.concurrency} threads and beat are up")

    probe = CpuProbe()
    for worker in workers:
        probe.pids[worker.name] = worker.pid
    probe.pids["beat"] = beat.pid
    assert redis.pid is not None
    probe.pids["redis"] = redis.pid
    if llm_proc is not None:
        probe.pids["llm-server"] = llm_proc.pid
    probe.postgres = postgres

    slots = max(1, math.ceil(args.minutes * 60 / args.interval))
    # The next boundary of the grid at least 3 s away (at most interval + 3 s).
    s0 = slot_floor(utcnow() + timedelta(seconds=args.interval + 3), args.interval)
    run_end = s0 + timedelta(seconds=slots * args.interval)
    Bot.objects.update(next_cycle_at=s0)
    connection.close()
    log(
        f"first slot {s0:%H:%M:%S} UTC (in {(s0 - utcnow()).total_seconds():.0f} s), {slots} slot(s), schedule ends {run_end:%H:%M:%S}"
    )

    def check_alive() -> None:
        for proc in [*workers, beat]:
            if not proc.alive():
                raise BenchError(f"{proc.name} died (exit {proc.popen.returncode}):\n{proc.log_tail()}")

    monitor = Monitor(postgres=postgres, redis_factory=redis.client)
    cpu_samples: list[tuple[float, dict[str, float]]] = []
    sleep_until(s0 - timedelta(seconds=1.5), check=check_alive)

    # --- start of measurement ---------------------------------------------------------------------
    redis_client = redis.client()
    pg_reset_statements(postgres)
    before = {
        "time": time.time(),
        "cpu": probe(),
        "machine": machine_jiffies(),
        "pg": pg_counters(postgres),
        "redis": redis_counters(redis_client),
        "stats": read_stats(platform.stats_dir),
        "load": loadavg(),
    }
    cpu_samples.append((before["time"], before["cpu"]))
    monitor.start()
    next_cpu = time.time() + CPU_SAMPLE_SECONDS
    next_report = time.time() + 30

    def tick() -> None:
        nonlocal next_cpu, next_report
        check_alive()
        now = time.time()
        if now >= next_cpu:
            cpu_samples.append((now, probe()))
            next_cpu += CPU_SAMPLE_SECONDS
        if now >= next_report:
            next_report += 30
            samples = monitor.snapshot()
            last = samples[-1] if samples else {}
            done = Cycle.objects.filter(finished_at__isnull=False).count()
            connection.close()
            log(f"cycles finished {done:,}; cycles queue {last.get('cycles', '?')}; load {loadavg()}")

    # A bot claimed for the last slot of the window already has its next slot (run_end): the
    # schedule ends by taking it back just before it is due, then again for every late claim.
    while utcnow() < run_end - timedelta(seconds=1):
        tick()
        time.sleep(0.25)

    # --- the schedule ends: no slot after run_end; drain what is due --------------------------------
    log("schedule ended: draining")
    drain_deadline = time.time() + args.drain
    quiet_since: float | None = None
    while time.time() < drain_deadline:
        tick()
        Bot.objects.filter(next_cycle_at__gte=run_end).update(next_cycle_at=None)
        pending = Bot.objects.filter(next_cycle_at__isnull=False).count()
        running = Cycle.objects.filter(status=Cycle.Status.RUNNING).count()
        connection.close()
        depths = queue_depths(redis_client)
        idle = pending == 0 and running == 0 and depths["cycles"] == 0 and depths["unacked"] == 0
        if idle:
            quiet_since = quiet_since or time.time()
            if time.time() - quiet_since >= 2:
                break
        else:
            quiet_since = None
        time.sleep(0.5)
    else:
        log(f"drain timed out after {args.drain:.0f} s: {pending} bot(s) unclaimed, {running} running, queue {depths}")
    drained = quiet_since is not None

    after = {
        "time": time.time(),
        "cpu": probe(),
        "machine": machine_jiffies(),
        "pg": pg_counters(postgres),
        "redis": redis_counters(redis_client),
        "load": loadavg(),
    }
    cpu_samples.append((after["time"], after["cpu"]))
    monitor.stop()
    llm_stats = None
    if llm_proc is not None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{llm_port}/bench/stats", timeout=5) as response:
                llm_stats = json.loads(response.read())
        except OSError as exc:
            llm_stats = {"error": str(exc)}
    log("stopping beat and workers")
    processes.stop_all([beat], timeout=15)
    processes.stop_all(workers, timeout=60)
    after["stats"] = read_stats(platform.stats_dir)

    result = analyse(
        args=args,
        s0=s0,
        slots=slots,
        run_end=run_end,
        before=before,
        after=after,
        cpu_samples=cpu_samples,
        samples=monitor.snapshot(),
        postgres=postgres,
        workers=[w.name for w in workers],
        llm_stats=llm_stats,
        drained=drained,
        load_start=load_start,
    )
    result["wall_seconds"] = round(time.time() - started)
    return result


def analyse(
    *,
    args: argparse.Namespace,
    s0: Any,
    slots: int,
    run_end: Any,
    before: dict[str, Any],
    after: dict[str, Any],
    cpu_samples: list[tuple[float, dict[str, float]]],
    samples: list[dict[str, Any]],
    postgres: Postgres,
    workers: list[str],
    llm_stats: dict[str, Any] | None,
    drained: bool,
    load_start: str,
) -> dict[str, Any]:
    from django.db import connection

    from bots.models import Bot, Cycle, LLMCall

    n_bots = Bot.objects.count()
    rows = list(Cycle.objects.values_list("bot_id", "slot", "status", "started_at", "finished_at", "timings__cpu_ms"))
    decision_errors = Cycle.objects.exclude(decision_error="").count()
    errors = Counter(e[:80] for e in Cycle.objects.exclude(error="").values_list("error", flat=True))
    llm_calls = dict(Counter(LLMCall.objects.values_list("status", flat=True)))
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_total_relation_size('bots_cycle')")
        cycle_table_bytes = cursor.fetchone()[0]
    connection.close()

    grid = [s0 + timedelta(seconds=k * args.interval) for k in range(slots)]
    by_slot: dict[Any, list[tuple[Any, ...]]] = defaultdict(list)
    for row in rows:
        by_slot[row[1]].append(row)
    off_grid = sum(1 for row in rows if row[1] not in set(grid))
    slot_rows = []
    all_lags: list[float] = []
    for slot in grid:
        mine = by_slot.get(slot, [])
        lags = [(r[3] - slot).total_seconds() for r in mine]
        all_lags += lags
        ends = [(r[4] - slot).total_seconds() for r in mine if r[4] is not None]
        statuses = Counter(r[2] for r in mine)
        slot_rows.append(
            {
                "slot": slot.isoformat(),
                "due": n_bots,
                "rows": len(mine),
                "completed": statuses.get("completed", 0),
                "failed": statuses.get("failed", 0),
                "skipped": statuses.get("skipped", 0),
                "other": len(mine)
                - statuses.get("completed", 0)
                - statuses.get("failed", 0)
                - statuses.get("skipped", 0),
                "started_within_60s": sum(1 for lag in lags if lag <= 60),
                "lag_p50_s": percentile(lags, 50),
                "lag_p95_s": percentile(lags, 95),
                "lag_max_s": max(lags) if lags else None,
                "finished_p95_s": percentile(ends, 95),
                "finished_max_s": max(ends) if ends else None,
                # How fast the slot's cycles were worked off: rows / (slot -> its last finish).
                "rate_per_min": round(len(ends) / max(ends) * 60) if ends and max(ends) > 0 else None,
                "missed": n_bots - len(mine),
            }
        )

    finished = [r for r in rows if r[4] is not None]
    n_cycles = len(finished)
    status_counts = Counter(r[2] for r in rows)
    t0, t1 = before["time"], after["time"]
    span = t1 - t0
    last_finish = max((r[4] for r in finished), default=None)
    active_span = (last_finish - s0).total_seconds() if last_finish is not None else None

    # Per minute from S0: finished cycles, queue high-water mark, connections, CPU per cycle.
    minutes = max(1, math.ceil(span / 60))
    minute_rows = []
    for m in range(minutes):
        lo, hi = s0 + timedelta(seconds=60 * m), s0 + timedelta(seconds=60 * (m + 1))
        done = sum(1 for r in finished if lo <= r[4] < hi)
        window = [s for s in samples if lo.timestamp() <= s["t"] < hi.timestamp()]
        cpu_lo = _cpu_at(cpu_samples, lo.timestamp())
        cpu_hi = _cpu_at(cpu_samples, min(hi.timestamp(), t1))
        platform_cpu = None
        if cpu_lo is not None and cpu_hi is not None:
            platform_cpu = sum(cpu_hi[k] - cpu_lo.get(k, 0.0) for k in cpu_hi if k != "llm-server")
        minute_rows.append(
            {
                "minute": m + 1,
                "finished": done,
                "queue_max": max((s.get("cycles", 0) for s in window), default=None),
                "pg_connections_max": max((s.get("pg_connections", 0) for s in window), default=None),
                "platform_cpu_s": None if platform_cpu is None else round(platform_cpu, 2),
                "cpu_ms_per_cycle": None if platform_cpu is None or not done else round(platform_cpu / done * 1000, 1),
            }
        )

    # CPU by process over the whole measurement.
    cpu_delta = {k: after["cpu"].get(k, 0.0) - before["cpu"].get(k, 0.0) for k in after["cpu"]}
    stats = stats_delta(before["stats"], after["stats"])
    cycle_tasks = stats["tasks"].get(CYCLE_TASK, 0)
    dispatch_tasks = stats["tasks"].get(DISPATCH_TASK, 0)

    def per_cycle(seconds: float) -> float | None:
        return None if not n_cycles else seconds / n_cycles * 1000

    cpu_rows = []
    platform_total = 0.0
    for name in [*workers, "beat", "postgres", "redis"]:
        if name not in cpu_delta:
            continue
        seconds = cpu_delta[name]
        platform_total += seconds
        label = name if name != "postgres" or postgres.private else "postgres (whole cluster)"
        cpu_rows.append({"process": label, "cpu_s": round(seconds, 2), "ms_per_cycle": _round(per_cycle(seconds), 2)})
    thread_cycle = stats["thread_cpu_seconds"].get(CYCLE_TASK, 0.0)
    thread_dispatch = stats["thread_cpu_seconds"].get(DISPATCH_TASK, 0.0)
    workers_cpu = sum(cpu_delta.get(w, 0.0) for w in workers)
    breakdown = {
        "cycle_task_threads_ms": _round(per_cycle(thread_cycle), 2),
        "dispatcher_task_threads_ms": _round(per_cycle(thread_dispatch), 2),
        "rest_of_worker_ms": _round(per_cycle(workers_cpu - thread_cycle - thread_dispatch), 2),
    }
    recorded_cpu = [float(r[5]) for r in finished if r[5] is not None]

    # Statements.
    django_cycle = sum(stats["statements"].get(CYCLE_TASK, {}).values())
    django_dispatch = sum(stats["statements"].get(DISPATCH_TASK, {}).values())
    pg_b, pg_a = before["pg"], after["pg"]
    server_statements = None
    if "statements" in pg_a:
        server_statements = dict(Counter(pg_a["statements"]))  # reset at the start: these are deltas
    pg_delta = {k: pg_a[k] - pg_b[k] for k in pg_b if isinstance(pg_b[k], int)}
    redis_delta = {k: after["redis"][k] - before["redis"][k] for k in before["redis"]}

    busy_b, total_b = before["machine"]
    busy_a, total_a = after["machine"]
    machine_busy = (busy_a - busy_b) / max(1, total_a - total_b)
    from bench.harness import CLK_TCK

    machine_busy_seconds = (busy_a - busy_b) / CLK_TCK
    ours = platform_total + cpu_delta.get("llm-server", 0.0)

    def div(x: float | int | None) -> float | None:
        return None if x is None or not n_cycles else x / n_cycles

    result: dict[str, Any] = {
        "config": {
            "bots": n_bots,
            "kind": args.kind,
            "mix": args.mix,
            "workers": args.workers,
            "concurrency": args.concurrency,
            "interval_s": args.interval,
            "slots": slots,
            "llm_latency_s": args.llm_latency if args.kind == "llm" else None,
            "database": "private cluster" if postgres.private else f"given server ({postgres.host}:{postgres.port})",
            "extra_env": args.env,
        },
        "first_slot": s0.isoformat(),
        "schedule_end": run_end.isoformat(),
        "measured_seconds": round(span, 1),
        "drained": drained,
        "machine": {
            "load_at_start": load_start,
            "load_at_measure_start": before["load"],
            "load_at_end": after["load"],
            "load1_max": max((s["load1"] for s in samples), default=None),
            "cores_busy_pct": round(machine_busy * 100, 1),
            "ours_pct_of_busy": round(ours / machine_busy_seconds * 100, 1) if machine_busy_seconds else None,
        },
        "slots_table": slot_rows,
        "minutes_table": minute_rows,
        "cycles": {
            "rows": len(rows),
            "finished": n_cycles,
            "by_status": dict(status_counts),
            "off_grid_rows": off_grid,
            "missed_slots": sum(r["missed"] for r in slot_rows),
            "decision_errors": decision_errors,
            "errors": dict(errors.most_common(5)),
            "llm_calls": llm_calls,
            "needed_per_minute": round(n_bots * 60 / args.interval, 1),
            "finished_per_minute": round(n_cycles / (active_span / 60), 1) if active_span else None,
            "slot_rate_per_min_min": min((r["rate_per_min"] for r in slot_rows if r["rate_per_min"]), default=None),
            "lag_p50_s": _round(percentile(all_lags, 50), 1),
            "lag_p95_s": _round(percentile(all_lags, 95), 1),
            "recorded_cpu_ms_p50": percentile(recorded_cpu, 50),
            "recorded_cpu_ms_mean": _round(statistics.fmean(recorded_cpu), 1) if recorded_cpu else None,
        },
        "cpu": {
            "by_process": cpu_rows,
            "platform_ms_per_cycle": _round(per_cycle(platform_total), 2),
            "worker_breakdown_ms_per_cycle": breakdown,
            "llm_server_ms_per_cycle": _round(per_cycle(cpu_delta["llm-server"]), 2)
            if "llm-server" in cpu_delta
            else None,
            "postgres_scope": "private cluster: every backend"
            if postgres.private
            else "whole cluster of the given server (other users' load included)",
        },
        "sql": {
            "cycle_tasks": cycle_tasks,
            "django_per_cycle_task_mean": _round(django_cycle / cycle_tasks, 1) if cycle_tasks else None,
            "django_per_cycle_task_p50": histogram_percentile(stats["per_cycle"], 50),
            "django_per_cycle_task_p90": histogram_percentile(stats["per_cycle"], 90),
            "django_per_cycle_task_max": max(stats["per_cycle"]) if stats["per_cycle"] else None,
            "django_by_kind_per_cycle": {
                k: round(v / cycle_tasks, 2) for k, v in sorted(stats["statements"].get(CYCLE_TASK, {}).items())
            }
            if cycle_tasks
            else {},
            "dispatcher_ticks": dispatch_tasks,
            # Per cycle row: claims whose message expired unrun have no row and are not counted.
            "dispatcher_statements_per_cycle_row": _round(django_dispatch / len(rows), 2) if rows else None,
            "server_per_cycle": _round(div(sum(server_statements.values())), 1) if server_statements else None,
            "server_client_per_cycle": _round(div(sum(v for k, v in server_statements.items() if k != "FK-CHECK")), 1)
            if server_statements
            else None,
            "server_by_kind_per_cycle": {k: round(v / n_cycles, 2) for k, v in sorted(server_statements.items())}
            if server_statements and n_cycles
            else None,
            "server_top_per_cycle": [(q, round(calls / n_cycles, 3)) for q, calls in pg_a.get("top_statements", [])]
            if n_cycles
            else [],
            "transactions_per_cycle": _round(div(pg_delta["xact_commit"] + pg_delta["xact_rollback"]), 2),
            "sessions_per_cycle": _round(div(pg_delta["sessions"]), 2),
            "django_sessions_per_cycle_task": _round(stats["sessions"].get(CYCLE_TASK, 0) / cycle_tasks, 2)
            if cycle_tasks
            else None,
        },
        "connections": {
            "pg_max": max((s.get("pg_connections", 0) for s in samples), default=None),
            "redis_clients_max": max((s.get("redis_clients", 0) for s in samples), default=None),
            "redis_connections_per_cycle": _round(div(redis_delta["connections_received"]), 2),
            "redis_commands_per_cycle": _round(div(redis_delta["commands_processed"]), 1),
            "queue_max": max((s.get("cycles", 0) for s in samples), default=None),
        },
        "storage": {
            "cycle_table_bytes_per_row": round(cycle_table_bytes / len(rows)) if rows else None,
            "database_growth_bytes_per_cycle": _round(div(pg_delta["database_bytes"]), 0),
        },
        "llm_server": llm_stats,
    }
    return result


def _cpu_at(samples: list[tuple[float, dict[str, float]]], t: float) -> dict[str, float] | None:
    """CPU counters interpolated linearly at time t between the two nearest samples."""
    if not samples or t < samples[0][0]:
        return None
    for (ta, a), (tb, b) in zip(samples, samples[1:], strict=False):
        if ta <= t <= tb:
            w = 0.0 if tb == ta else (t - ta) / (tb - ta)
            return {k: a.get(k, 0.0) + (b.get(k, 0.0) - a.get(k, 0.0)) * w for k in b}
    return samples[-1][1]


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def render(r: dict[str, Any]) -> str:
    c = r["config"]
    m = r["machine"]
    cy = r["cycles"]
    out = [
        "",
        f"scale bench: {c['bots']:,} {c['kind']} bots"
        + (f" (model latency {c['llm_latency_s']:g} s)" if c["kind"] == "llm" else f" (mix {c['mix']})")
        + f", interval {c['interval_s']} s, {c['workers']} worker(s) x {c['concurrency']} threads, {c['database']}",
        f"first slot {r['first_slot']}, {c['slots']} slot(s); measured {r['measured_seconds']:.0f} s"
        + ("" if r["drained"] else " (queue NOT drained at the end)"),
        f"machine: load {m['load_at_start']} at start, {m['load_at_end']} at end (1-min max {fmt(m['load1_max'], 2)}); "
        f"both cores {m['cores_busy_pct']}% busy, {fmt(m['ours_pct_of_busy'])}% of it ours",
        "",
        "Per slot (lag = cycle started_at - slot):",
        table(
            ["slot", "due", "rows", "completed", "failed", "skipped", "<=60s", "lag p50", "lag p95", "lag max",
             "last done", "rate/min", "missed"],
            [
                [s["slot"][11:19], s["due"], s["rows"], s["completed"], s["failed"], s["skipped"], s["started_within_60s"],
                 fmt(s["lag_p50_s"], 1, " s"), fmt(s["lag_p95_s"], 1, " s"), fmt(s["lag_max_s"], 1, " s"),
                 fmt(s["finished_max_s"], 1, " s"), fmt(s["rate_per_min"], 0), s["missed"]]
                for s in r["slots_table"]
            ],
        ),  # fmt: skip
        "",
        "Per minute from the first slot:",
        table(
            ["minute", "finished", "queue max", "pg conns max", "platform CPU s", "CPU ms/cycle"],
            [
                [x["minute"], x["finished"], fmt(x["queue_max"], 0), fmt(x["pg_connections_max"], 0),
                 fmt(x["platform_cpu_s"], 1), fmt(x["cpu_ms_per_cycle"], 1)]
                for x in r["minutes_table"]
            ],
        ),  # fmt: skip
        "",
        f"cycles: {cy['finished']:,} finished ({', '.join(f'{k} {v:,}' for k, v in sorted(cy['by_status'].items()))}); "
        f"{cy['missed_slots']:,} missed slot(s); {cy['off_grid_rows']} row(s) for slots outside the schedule",
        f"decision errors {cy['decision_errors']}; LLM calls {cy['llm_calls'] or '-'}; most frequent errors {cy['errors'] or '-'}",
        f"throughput: {cy['needed_per_minute']:,} cycles/min needed; slots worked off at >= {fmt(cy['slot_rate_per_min_min'], 0)} "
        f"cycles/min (rate/min: a slot's rows / time from the slot to its last finish); {fmt(cy['finished_per_minute'])} "
        f"cycles/min from the first slot to the last finish; slot lag p50 {fmt(cy['lag_p50_s'], 1, ' s')}, p95 {fmt(cy['lag_p95_s'], 1, ' s')}",
        "",
        "CPU per finished cycle, by process (/proc utime+stime):",
        table(
            ["process", "CPU s", "ms/cycle"],
            [[x["process"], fmt(x["cpu_s"], 2), fmt(x["ms_per_cycle"], 2)] for x in r["cpu"]["by_process"]]
            + [["platform total", "", fmt(r["cpu"]["platform_ms_per_cycle"], 2)]]
            + ([["(model server)", "", fmt(r["cpu"]["llm_server_ms_per_cycle"], 2)]] if r["cpu"]["llm_server_ms_per_cycle"] is not None else []),
        ),
        f"  worker(s): cycle task threads {fmt(r['cpu']['worker_breakdown_ms_per_cycle']['cycle_task_threads_ms'], 2)} ms, "
        f"dispatcher task {fmt(r['cpu']['worker_breakdown_ms_per_cycle']['dispatcher_task_threads_ms'], 2)} ms, "
        f"rest of the process {fmt(r['cpu']['worker_breakdown_ms_per_cycle']['rest_of_worker_ms'], 2)} ms",
        f"  recorded cpu_ms of the cycles: p50 {fmt(cy['recorded_cpu_ms_p50'], 0)} ms, mean {fmt(cy['recorded_cpu_ms_mean'])} ms",
        f"  PostgreSQL scope: {r['cpu']['postgres_scope']}",
        "",
        "SQL per cycle:",
        f"  Django (execute_wrapper, per cycle task): mean {fmt(r['sql']['django_per_cycle_task_mean'])}, "
        f"p50 {fmt(r['sql']['django_per_cycle_task_p50'], 0)}, p90 {fmt(r['sql']['django_per_cycle_task_p90'], 0)}, "
        f"max {fmt(r['sql']['django_per_cycle_task_max'], 0)}  "
        + " ".join(f"{k}={v}" for k, v in r["sql"]["django_by_kind_per_cycle"].items()),
        f"  server (pg_stat_statements / finished cycles): {fmt(r['sql']['server_client_per_cycle'])} sent by clients "
        f"(+ FK checks: {fmt(r['sql']['server_per_cycle'])} in all)  "
        + (" ".join(f"{k}={v}" for k, v in r["sql"]["server_by_kind_per_cycle"].items()) if r["sql"]["server_by_kind_per_cycle"] else "(not available on a given server)"),
        *(f"    {calls:6.3f}  {query}" for query, calls in r["sql"]["server_top_per_cycle"][:10]),
        f"  transactions {fmt(r['sql']['transactions_per_cycle'], 2)}, new sessions {fmt(r['sql']['sessions_per_cycle'], 2)} per cycle; "
        f"dispatcher {fmt(r['sql']['dispatcher_statements_per_cycle_row'], 2)} statements per cycle row over {r['sql']['dispatcher_ticks']} ticks",
        "",
        f"connections: PostgreSQL max {fmt(r['connections']['pg_max'], 0)} (1 s samples); Redis clients max "
        f"{fmt(r['connections']['redis_clients_max'], 0)}, {fmt(r['connections']['redis_connections_per_cycle'], 2)} new Redis "
        f"connections and {fmt(r['connections']['redis_commands_per_cycle'], 1)} commands per cycle; cycles queue max {fmt(r['connections']['queue_max'], 0)}",
        f"storage: {fmt(r['storage']['cycle_table_bytes_per_row'], 0)} bytes per cycle row (table + indexes + TOAST), "
        f"database growth {fmt(r['storage']['database_growth_bytes_per_cycle'], 0)} bytes per cycle",
    ]  # fmt: skip
    if r.get("llm_server"):
        out.append(f"model server: {r['llm_server']}")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
