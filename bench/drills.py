"""Fault drills: kill the worker, lose Redis, cut the database; then check that nothing was lost.

    .venv/bin/python bench/drills.py                       # the full drill, about 10 minutes
    .venv/bin/python bench/drills.py --worker-kills 3 --redis-rounds 1 --db-rounds 1 --dual 30

What runs (started and stopped by the bench, see bench/harness.py): a private PostgreSQL cluster
with a fresh `bench_drills` database (or `--database-url`), a private redis-server, one Celery
worker and one beat as the launcher and compose run them (bench/celery_bench.py: the platform's
own app, here with the dispatcher's claims logged), and `--bots` trading baseline bots (ema_rsi
and buy_and_hold over the recorded markets) every `--interval` seconds on the replay feed moved
one candle every `--candle-seconds`, so positions open and close all the time.

The rounds, in order, each followed by `--gap` seconds of normal running:
1. worker kills: `--worker-kills` times, SIGKILL of the worker, restarted a second later as a
   supervisor (compose's `restart: unless-stopped`) would do;
2. Redis: `--redis-rounds` times, kill -9 of the Redis server, down `--redis-down` seconds,
   restarted empty;
3. database: `--db-rounds` times, `pg_terminate_backend` of every backend of the bench database,
   ten times a second for `--db-cut` seconds;
each fault at a random moment: a random `--kill-gap` wait, then (`--fault-timing busy`, the
default) the first moment cycles are running or queued, plus a random 0-3 s, so that faults hit
the work rather than the idle time between slots (`random`: right after the wait);
4. two beats and two workers together for `--dual` seconds;
then a settle period (two lease times after the last fault at least) and a graceful stop.

The lease is `CYCLE_TIME_LIMIT + 30 s`; the drill sets CYCLE_TIME_LIMIT=`--cycle-time-limit`
(30 s: a 60 s lease) so that "two lease times" fits in the run (the threads pool does not enforce
time limits; only the lease's expiry matters here).

Checks, from the database rows after everything stopped:
- duplicate client order ids; duplicate (bot, slot) cycles; orders with more than one fill or a
  fill that does not match the order; more than one open position per (bot, symbol);
- cycles still unfinished (`running`, or any status other than completed/failed/skipped) that
  started more than two lease times before the end (stuck), and how many of them had passed the
  risk stage or had filled orders;
- claimed slots without a record: every claim the dispatcher made is logged by the worker (line
  written after the claim's UPDATE committed and before the message is sent, see
  bench/celery_bench.py); a claimed (bot, slot) with no cycle row lost its slot without a trace;
- silently skipped slots: on each bot's grid of `--interval` slots between its first and its last
  slot (cycle row or claim), slots with neither a cycle row nor a claim: the dispatcher skipped
  them and nothing says so (a skipped-slot record, once the platform writes one, is a cycle row
  and counts as recorded);
- the books, per bot, in Decimal from the rows: cash = starting capital + realized PnL - fees -
  margin of the open positions; each filled order has exactly one fill of its quantity, and a
  position's quantity equals its opening fill (and its closing fill once closed); the last equity
  snapshot's equity = its cash + the margin of the positions open then + its unrealized PnL (and
  its cash = the bot's cash when no fill came after it). `manage.py ledger_check` is run as well
  when the platform has that command;
- recovery after each fault: from the fault's end (worker restarted, Redis back, cut stopped) to
  the end of the first cycle that started after it and completed.
Lost, skipped, stuck and failed slots are attributed to the last round that began before the slot
was due plus one interval (a slot's cycle may still be queued or running that long).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import (
    BASE_DIR,
    HARNESS_APP,
    BenchError,
    GivenPostgres,
    Monitor,
    Platform,
    Postgres,
    PrivatePostgres,
    PrivateRedis,
    Proc,
    Processes,
    fmt,
    install_signal_handlers,
    ledger_check_available,
    loadavg,
    log,
    make_run_dir,
    pg_connect,
    queue_depths,
    seed_bots,
    setup_django,
    slot_floor,
    table,
    utcnow,
    wait_beat_started,
    wait_worker_ready,
)

WORKER_KILL, REDIS_KILL, DB_CUT, DUAL = "worker kill", "redis kill -9", "db cut", "2 beats + 2 workers"
FAULTS = (WORKER_KILL, REDIS_KILL, DB_CUT)
FINAL_STATUSES = ("completed", "failed", "skipped")


@dataclass
class Event:
    kind: str
    number: int
    start: float
    end: float = 0.0  # when the fault ended (worker restarted, Redis back, cut stopped)
    ready: float | None = None  # worker kills: when the new worker was ready
    note: str = ""
    attributed: dict[str, int] = field(default_factory=dict)
    recovery_s: float | None = None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/drills.py",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--bots", type=int, default=100, help="trading baseline bots (default 100)")
    parser.add_argument("--interval", type=int, default=15, help="the bots' interval, s (default 15)")
    parser.add_argument("--candle-seconds", type=int, default=2, help="REPLAY_CANDLE_SECONDS (default 2)")
    parser.add_argument("--concurrency", type=int, default=8, help="threads per worker (default 8)")
    parser.add_argument("--warmup", type=float, default=45, help="normal running before the first fault, s")
    parser.add_argument("--worker-kills", type=int, default=8, help="SIGKILLs of the worker (default 8)")
    parser.add_argument(
        "--kill-gap", default="3:15", metavar="MIN:MAX", help="random wait before each fault, s (default 3:15)"
    )
    parser.add_argument(
        "--fault-timing",
        choices=("busy", "random"),
        default="busy",
        help="busy (default): each fault lands while cycles are queued or running; random: right after the wait",
    )
    parser.add_argument("--redis-rounds", type=int, default=2, help="kill -9 + empty restarts of Redis (default 2)")
    parser.add_argument("--redis-down", type=float, default=3, help="seconds Redis stays down (default 3)")
    parser.add_argument("--db-rounds", type=int, default=2, help="database connection cuts (default 2)")
    parser.add_argument("--db-cut", type=float, default=12, help="seconds each cut lasts (default 12)")
    parser.add_argument("--dual", type=float, default=90, help="seconds with two beats and two workers (default 90)")
    parser.add_argument("--gap", type=float, default=25, help="normal running after each round, s (default 25)")
    parser.add_argument("--cycle-time-limit", type=int, default=30, help="CYCLE_TIME_LIMIT for the drill (default 30)")
    parser.add_argument("--settle", type=float, default=None, help="s after the last fault (default 2 leases + 15)")
    parser.add_argument("--seed", type=int, default=None, help="random seed of the kill moments")
    parser.add_argument("--database-url", default="", help="use this server and database (bench_*) instead")
    parser.add_argument("--redis-port", type=int, default=None, help="port of the private Redis (6420-6429)")
    parser.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="extra setting for the platform"
    )
    parser.add_argument("--json", default="", metavar="PATH", help="also write the figures as JSON ('-' for stdout)")
    parser.add_argument("--keep", action="store_true", help="keep the run directory (logs, claims) and the database")
    args = parser.parse_args(argv)
    problems = []
    try:
        low, high = (float(x) for x in args.kill_gap.split(":"))
        if not 0 <= low <= high:
            raise ValueError
        args.kill_gap_range = (low, high)
    except ValueError:
        problems.append("--kill-gap must be MIN:MAX seconds, 0 <= MIN <= MAX")
    if args.bots < 1:
        problems.append("--bots must be at least 1")
    if not 5 <= args.interval <= 86400:
        problems.append("--interval must be 5..86400 seconds")
    if args.candle_seconds < 1 or args.concurrency < 1:
        problems.append("--candle-seconds and --concurrency must be at least 1")
    if args.cycle_time_limit < 12:
        problems.append("--cycle-time-limit must be at least 12 s")
    for name in ("worker_kills", "redis_rounds", "db_rounds"):
        if getattr(args, name) < 0:
            problems.append(f"--{name.replace('_', '-')} must be >= 0")
    for name in ("warmup", "redis_down", "db_cut", "dual", "gap"):
        if getattr(args, name) < 0:
            problems.append(f"--{name.replace('_', '-')} must be >= 0")
    if args.database_url and not args.database_url.rstrip("/").rsplit("/", 1)[-1].startswith("bench_"):
        problems.append("--database-url must name a database starting with bench_ (it is dropped and recreated)")
    for item in args.env:
        if "=" not in item:
            problems.append(f"--env {item!r}: expected KEY=VALUE")
    if problems:
        parser.error("; ".join(problems))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    install_signal_handlers()
    run_dir = make_run_dir("bench-drills")
    processes = Processes(run_dir)
    state: dict[str, Any] = {}
    outcome = "error"
    try:
        result = Drill(args, run_dir, processes, state).run()
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
    return 0 if result["verdict"]["clean"] else 1


class Drill:
    def __init__(self, args: argparse.Namespace, run_dir: Path, processes: Processes, state: dict[str, Any]) -> None:
        self.args = args
        self.run_dir = run_dir
        self.processes = processes
        self.state = state
        self.events: list[Event] = []
        self.random = random.Random(args.seed)
        self.workers: dict[str, Proc] = {}
        self.probe: Any = None
        self.redis_probe: Any = None
        self.beats: dict[str, Proc] = {}

    # --- set-up -------------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        args = self.args
        self.load_start = loadavg()
        log(f"run directory {self.run_dir}; load average {self.load_start}")
        self.postgres: Postgres
        if args.database_url:
            self.postgres = GivenPostgres(args.database_url)
        else:
            private = PrivatePostgres(self.processes, database="bench_drills", max_connections=100)
            log("starting a private PostgreSQL cluster")
            private.start()
            self.postgres = private
        self.state["postgres"] = self.postgres
        self.postgres.recreate_database()
        self.redis = PrivateRedis(self.processes, args.redis_port)
        self.redis.start()
        log(f"private Redis on port {self.redis.port}")
        soft = max(5, args.cycle_time_limit - 10)
        extra_env = {
            "REPLAY_CANDLE_SECONDS": str(args.candle_seconds),
            "CYCLE_TIME_LIMIT": str(args.cycle_time_limit),
            "CYCLE_SOFT_TIME_LIMIT": str(soft),
            # Must stay below the soft limit (settings check); the drill's bots ask no model.
            "LLM_MAX_WAIT_SECONDS": str(max(1, soft - 3)),
            "LLM_RATE_LIMIT_WAIT_SECONDS": "1",
            **dict(item.split("=", 1) for item in args.env),
        }
        self.platform = Platform(
            database_url=self.postgres.url(), redis_url=self.redis.url, run_dir=self.run_dir, extra_env=extra_env
        )
        self.platform.prepare()
        setup_django(self.platform)
        from django.core.management import call_command
        from django.db import connection

        from bots.models import Bot
        from bots.services import lease_seconds

        self.lease = float(lease_seconds())
        log("migrating the bench database")
        call_command("migrate", verbosity=0)
        log(f"seeding {args.bots} trading baseline bots (interval {args.interval} s)")
        seed_bots(count=args.bots, kind="baseline", mix="trading", interval=args.interval)
        connection.close()

        self.start_worker("w1", wait=True)
        self.start_beat("b1")
        first = slot_floor(utcnow() + timedelta(seconds=args.interval + 1), args.interval)
        Bot.objects.update(next_cycle_at=first)
        connection.close()
        self.t0 = time.time()
        self.monitor = Monitor(postgres=self.postgres, redis_factory=self.redis.client)
        self.monitor.start()
        log(f"bots due from {first:%H:%M:%S} UTC; lease {self.lease:.0f} s; warming up {args.warmup:.0f} s")
        self.wait(args.warmup + (first - utcnow()).total_seconds())

        self.round_worker_kills()
        self.round_redis()
        self.round_db_cuts()
        self.round_dual()
        last_fault = max((e.end for e in self.events if e.kind in FAULTS), default=self.t0)
        settle = args.settle if args.settle is not None else 2 * self.lease + 15 - (time.time() - last_fault)
        settle = max(settle, 30.0)
        self.events.append(Event("settle", 1, time.time(), note=f"{settle:.0f} s"))
        log(f"settling {settle:.0f} s (two lease times after the last fault)")
        self.wait(settle)
        self.end = time.time()
        self.stop_platform()
        self.monitor.stop()
        return self.analyse()

    def start_worker(self, name: str, *, wait: bool) -> Proc:
        proc = self.platform.start_worker(self.processes, name, self.args.concurrency, claims=True)
        self.workers[name] = proc
        if wait:
            wait_worker_ready(proc)
        return proc

    def start_beat(self, name: str) -> Proc:
        proc = self.platform.start_beat(self.processes, name)
        self.beats[name] = proc
        wait_beat_started(proc)
        return proc

    def check_alive(self) -> None:
        for proc in [*self.workers.values(), *self.beats.values()]:
            if not proc.alive():
                raise BenchError(f"{proc.name} died by itself (exit {proc.popen.returncode}):\n{proc.log_tail()}")

    def wait(self, seconds: float) -> None:
        deadline = time.time() + max(0.0, seconds)
        while time.time() < deadline:
            self.check_alive()
            time.sleep(min(0.5, max(0.0, deadline - time.time())))

    # --- rounds ---------------------------------------------------------------------------------------

    def busy_now(self) -> tuple[int, int]:
        """(cycles running that started in the last 30 s, messages in the cycles queue)."""
        running = queued = 0
        try:
            if self.probe is None:
                self.probe = pg_connect(self.postgres.url(application_name=HARNESS_APP))
            running = self.probe.execute(
                "SELECT count(*) FROM bots_cycle WHERE status NOT IN ('completed', 'failed', 'skipped') "
                "AND started_at > now() - interval '30 seconds'"
            ).fetchone()[0]
        except Exception:
            self.probe = None  # cut or restarted: reconnect next time
        try:
            if self.redis_probe is None:
                self.redis_probe = self.redis.client()
            queued = queue_depths(self.redis_probe)["cycles"]
        except Exception:
            self.redis_probe = None
        return running, queued

    def fault_moment(self) -> str:
        """Wait a random `--kill-gap`, then (`--fault-timing busy`) until cycles are queued or
        running, plus a random part of a second or three: a fault lands inside the work."""
        low, high = self.args.kill_gap_range
        self.wait(self.random.uniform(low, high))
        if self.args.fault_timing != "busy":
            return "random moment"
        deadline = time.time() + 2 * self.args.interval
        while time.time() < deadline:
            running, queued = self.busy_now()
            if running or queued:
                self.wait(self.random.uniform(0, min(3.0, self.args.interval / 4)))
                running, queued = self.busy_now()
                return f"at {running} running, {queued} queued"
            self.check_alive()
            time.sleep(0.1)
        return "no work seen: idle moment"

    def round_worker_kills(self) -> None:
        for n in range(1, self.args.worker_kills + 1):
            moment = self.fault_moment()
            worker = self.workers["w1"]
            event = Event(WORKER_KILL, n, time.time())
            self.processes.kill(worker)
            self.processes.procs.remove(worker)
            time.sleep(1.0)  # a supervisor's restart delay
            event.end = time.time()
            self.start_worker("w1", wait=True)
            event.ready = time.time()
            event.note = moment
            self.events.append(event)
            log(f"worker kill {n} ({moment}): restarted, ready after {event.ready - event.end:.1f} s")
        if self.args.worker_kills:
            self.wait(self.args.gap)

    def round_redis(self) -> None:
        for n in range(1, self.args.redis_rounds + 1):
            moment = self.fault_moment()
            event = Event(REDIS_KILL, n, time.time())
            self.redis.kill9()
            time.sleep(self.args.redis_down)
            self.redis.start()
            event.end = time.time()
            event.note = f"{moment}; down {self.args.redis_down:g} s, restarted empty"
            self.events.append(event)
            log(f"Redis round {n}: restarted empty after {event.end - event.start:.1f} s")
            self.wait(self.args.gap)

    def round_db_cuts(self) -> None:
        for n in range(1, self.args.db_rounds + 1):
            moment = self.fault_moment()
            event = Event(DB_CUT, n, time.time())
            terminated = 0
            with self.postgres.connect() as conn:
                deadline = time.time() + self.args.db_cut
                while time.time() < deadline:
                    rows = conn.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = %s AND pid <> pg_backend_pid()",
                        (self.postgres.database,),
                    ).fetchall()
                    terminated += sum(1 for (done,) in rows if done)
                    time.sleep(0.1)
            event.end = time.time()
            event.note = f"{moment}; {terminated} backend(s) terminated in {self.args.db_cut:g} s"
            self.events.append(event)
            log(f"database cut {n}: {event.note}")
            self.check_alive()
            self.wait(self.args.gap)

    def round_dual(self) -> None:
        if self.args.dual <= 0:
            return
        event = Event(DUAL, 1, time.time())
        self.start_worker("w2", wait=True)
        self.start_beat("b2")
        self.wait(self.args.dual)
        self.processes.stop_all([self.beats.pop("b2")], timeout=15)
        self.processes.stop_all([self.workers.pop("w2")], timeout=60)
        event.end = time.time()
        event.note = f"{self.args.dual:g} s"
        self.events.append(event)
        log("two beats and two workers: done")

    def stop_platform(self) -> None:
        from django.db import connection

        from bots.models import Cycle

        log("stopping beat, letting the queued and running cycles finish, stopping the worker")
        self.processes.stop_all(list(self.beats.values()), timeout=15)
        # Done when the queue is empty and no cycle row started or finished for 3 s (cycles a
        # fault left `running` never finish: they must not hold the stop up).
        client = self.redis.client()
        deadline = time.time() + 30
        last: tuple[int, int] | None = None
        steady_since = time.time()
        while time.time() < deadline:
            state = (
                Cycle.objects.count(),
                Cycle.objects.exclude(status__in=FINAL_STATUSES).count(),
            )
            connection.close()
            if state != last:
                last, steady_since = state, time.time()
            try:
                queued = queue_depths(client)["cycles"]
            except Exception:
                queued = 0
            if queued == 0 and time.time() - steady_since >= 3:
                break
            time.sleep(0.5)
        self.processes.stop_all(list(self.workers.values()), timeout=60)

    # --- checks -----------------------------------------------------------------------------------------

    def analyse(self) -> dict[str, Any]:
        from django.db import connection

        from bots.models import Bot, Cycle
        from trading.models import Order

        connection.close()
        end = datetime.fromtimestamp(self.end, tz=UTC)
        interval = timedelta(seconds=self.args.interval)
        cycles = list(
            Cycle.objects.values_list("pk", "bot_id", "slot", "status", "started_at", "finished_at", "risk", "attempts")
        )
        rows_by_bot: dict[int, set[datetime]] = defaultdict(set)
        for _, bot_id, slot, *_rest in cycles:
            rows_by_bot[bot_id].add(slot)
        claims, enqueued = self.read_claims()

        # Claimed without a record, silently skipped (on each bot's grid).
        lost: list[tuple[int, datetime]] = []
        skipped: list[tuple[int, datetime]] = []
        off_grid = 0
        for bot_id in set(rows_by_bot) | set(claims):
            rows = rows_by_bot.get(bot_id, set())
            claimed = claims.get(bot_id, set())
            known = rows | claimed
            first, last = min(known), max(known)
            lost += [(bot_id, s) for s in claimed - rows]
            slot = first
            grid = set()
            while slot <= last:
                grid.add(slot)
                slot += interval
            off_grid += len(known - grid)
            skipped += [(bot_id, s) for s in sorted(grid - known)]
        not_enqueued = sum(len(claims[b] - enqueued.get(b, set())) for b in claims)
        if claims:
            method = "claims logged by the worker's dispatcher wrapper + each bot's slot grid"
        else:
            # bench/celery_bench.py found no `bots.tasks._enqueue_cycle` to wrap.
            method = (
                "NO claims logged (the dispatcher has no bots.tasks._enqueue_cycle any more): claimed slots "
                "without a record cannot be told apart here; silently skipped slots from the grid only"
            )

        # Cycles not finished: `running` today, and any other non-final status a later version
        # writes (a `queued` record of a claim, say) counts the same way.
        two_leases = timedelta(seconds=2 * self.lease)
        running = [c for c in cycles if c[3] not in FINAL_STATUSES]
        stuck = [c for c in running if c[4] < end - two_leases]
        stuck_ids = [c[0] for c in stuck]
        stuck_past_risk = sum(1 for c in stuck if c[6] is not None)
        stuck_with_fills = (
            Order.objects.filter(cycle_id__in=stuck_ids, status=Order.Status.FILLED)
            .values("cycle_id")
            .distinct()
            .count()
        )
        resumed = sum(1 for c in cycles if c[7] > 1)

        # Attribute lost / skipped / stuck slots and failed cycles to the round their slot was due in.
        phases = [Event("warm-up", 1, self.t0), *sorted(self.events, key=lambda e: e.start)]

        def phase_of(when: datetime) -> Event:
            # A slot's cycle may still be queued or running up to one interval after the slot:
            # a fault within that time is the one that can have cost it.
            t = when.timestamp() + self.args.interval
            current = phases[0]
            for phase in phases:
                if phase.start <= t:
                    current = phase
            return current

        for name, items in (
            ("lost", [s for _, s in lost]),
            ("skipped", [s for _, s in skipped]),
            ("stuck", [c[2] for c in stuck]),
            ("failed", [c[2] for c in cycles if c[3] == Cycle.Status.FAILED]),
            ("cycles", [c[2] for c in cycles]),
        ):
            for slot in items:
                phase = phase_of(slot)
                phase.attributed[name] = phase.attributed.get(name, 0) + 1

        # Recovery: the first cycle that started after the fault ended and completed.
        completed = sorted((c[4], c[5]) for c in cycles if c[3] == Cycle.Status.COMPLETED and c[5] is not None)
        for event in self.events:
            if event.kind not in FAULTS:
                continue
            fault_end = datetime.fromtimestamp(event.end, tz=UTC)
            after = [finished for started, finished in completed if started >= fault_end]
            if after:
                event.recovery_s = round((min(after) - fault_end).total_seconds(), 1)

        duplicates = self.duplicates()
        books = self.books()
        ledger = self.ledger_check()
        activity = self.activity()
        statuses = dict(Counter(Bot.objects.values_list("status", flat=True)))
        status_reasons = dict(
            Counter(r[:60] for r in Bot.objects.exclude(status_reason="").values_list("status_reason", flat=True))
        )
        connection.close()

        samples = self.monitor.snapshot()
        clean = (
            not any(duplicates.values())
            and not stuck
            and not lost
            and not skipped
            and books["bots_failing"] == 0
            and (ledger is None or ledger["exit_code"] == 0)
        )
        return {
            "config": {
                "bots": self.args.bots,
                "interval_s": self.args.interval,
                "candle_seconds": self.args.candle_seconds,
                "lease_s": self.lease,
                "concurrency": self.args.concurrency,
                "database": "private cluster" if self.postgres.private else "given server",
                "extra_env": self.args.env,
                "seed": self.args.seed,
            },
            "machine": {
                "load_at_start": self.load_start,
                "load_at_end": loadavg(),
                "load1_max": max((s["load1"] for s in samples), default=None),
            },
            "duration_s": round(self.end - self.t0),
            "rounds": [
                {
                    "fault": e.kind,
                    "n": e.number,
                    "at_s": round(e.start - self.t0, 1),
                    "lasted_s": round(e.end - e.start, 1) if e.end else None,
                    "worker_ready_s": round(e.ready - e.end, 1) if e.ready else None,
                    "recovery_s": e.recovery_s,
                    "note": e.note,
                    **{k: e.attributed.get(k, 0) for k in ("cycles", "failed", "lost", "skipped", "stuck")},
                }
                for e in phases
            ],
            "cycles": {
                "rows": len(cycles),
                "by_status": dict(Counter(c[3] for c in cycles)),
                "resumed_attempts_gt_1": resumed,
                "running_at_end": len(running),
                "stuck_past_two_leases": len(stuck),
                "stuck_past_risk_stage": stuck_past_risk,
                "stuck_with_filled_orders": stuck_with_fills,
            },
            "slots": {
                "claims_logged": sum(len(v) for v in claims.values()),
                "claimed_without_record": len(lost),
                "claimed_not_enqueued": not_enqueued,
                "silently_skipped": len(skipped),
                "off_grid": off_grid,
                "method": method,
            },
            "duplicates": duplicates,
            "books": books,
            "ledger_check": ledger,
            "activity": activity,
            "bots": {"by_status": statuses, "reasons": status_reasons},
            "verdict": {"clean": clean},
        }

    def read_claims(self) -> tuple[dict[int, set[datetime]], dict[int, set[datetime]]]:
        claims: dict[int, set[datetime]] = defaultdict(set)
        enqueued: dict[int, set[datetime]] = defaultdict(set)
        for path in self.platform.claims_dir.glob("claims-*.log"):
            for line in path.read_text().splitlines():
                parts = line.split()
                if len(parts) != 4:
                    continue  # a line cut by the SIGKILL
                mark, _, bot_id, slot = parts
                target = claims if mark == "C" else enqueued
                target[int(bot_id)].add(datetime.fromisoformat(slot))
        return claims, enqueued

    def duplicates(self) -> dict[str, int]:
        from django.db import connection

        queries = {
            "client_order_ids": "SELECT count(*) FROM (SELECT client_order_id FROM trading_order "
            "GROUP BY client_order_id HAVING count(*) > 1) d",
            "bot_slot_cycles": "SELECT count(*) FROM (SELECT bot_id, slot FROM bots_cycle "
            "GROUP BY bot_id, slot HAVING count(*) > 1) d",
            "orders_with_several_fills": "SELECT count(*) FROM (SELECT order_id FROM trading_fill "
            "GROUP BY order_id HAVING count(*) > 1) d",
            "open_positions_per_bot_symbol": "SELECT count(*) FROM (SELECT bot_id, symbol FROM trading_position "
            "WHERE status = 'open' GROUP BY bot_id, symbol HAVING count(*) > 1) d",
        }
        counts = {}
        with connection.cursor() as cursor:
            for name, sql in queries.items():
                cursor.execute(sql)
                counts[name] = int(cursor.fetchone()[0])
        return counts

    def books(self) -> dict[str, Any]:
        """The bench's own ledger check (see the module docstring), exact in Decimal."""
        from bots.models import Bot
        from marketdata.feeds import get_feed
        from trading.models import EquitySnapshot, Fill, Order, Position

        feed = get_feed("replay")
        contract: dict[tuple[str, str], Decimal] = {}
        for exchange in {b.exchange for b in Bot.objects.only("exchange")}:
            for symbol, info in feed.markets(exchange=exchange).items():
                contract[(exchange, symbol)] = info.contract_size
        fills_by_order: dict[int, list[Any]] = defaultdict(list)
        for fill in Fill.objects.all():
            fills_by_order[fill.order_id].append(fill)
        orders_by_position: dict[int, list[Any]] = defaultdict(list)
        problems: Counter[str] = Counter()
        examples: list[str] = []

        def problem(kind: str, text: str) -> None:
            problems[kind] += 1
            if len(examples) < 8:
                examples.append(f"{kind}: {text}")

        for order in Order.objects.all():
            fills = fills_by_order.get(order.pk, [])
            if order.position_id is not None:
                orders_by_position[order.position_id].append(order)
            if order.status == Order.Status.FILLED:
                if len(fills) != 1 or fills[0].quantity != order.filled_quantity:
                    problem(
                        "order_fills",
                        f"order {order.client_order_id} filled {order.filled_quantity}, fills {[f.quantity for f in fills]}",
                    )
            elif fills:
                problem("order_fills", f"order {order.client_order_id} is {order.status} but has {len(fills)} fill(s)")
        failing: set[int] = set()
        bots = list(Bot.objects.all())
        positions_by_bot: dict[int, list[Any]] = defaultdict(list)
        for position in Position.objects.all():
            positions_by_bot[position.bot_id].append(position)
        last_fill: dict[int, datetime] = {}
        for fill in Fill.objects.order_by("created_at"):
            last_fill[fill.bot_id] = fill.created_at
        for bot in bots:
            positions = positions_by_bot.get(bot.pk, [])
            realized = sum((p.realized_pnl for p in positions), Decimal(0))
            fees = sum((p.fees for p in positions), Decimal(0))
            margin_open = sum((p.margin for p in positions if p.status == Position.Status.OPEN), Decimal(0))
            expected = bot.starting_capital + realized - fees - margin_open
            if bot.cash != expected:
                problem("cash", f"bot {bot.pk}: cash {bot.cash} != {expected}")
                failing.add(bot.pk)
            for p in positions:
                size = contract.get((bot.exchange, p.symbol), Decimal(1))
                orders = orders_by_position.get(p.pk, [])
                opening = [f for o in orders if o.intent == Order.Intent.OPEN for f in fills_by_order.get(o.pk, [])]
                closing = [f for o in orders if o.intent != Order.Intent.OPEN for f in fills_by_order.get(o.pk, [])]
                if sum((f.quantity for f in opening), Decimal(0)) * size != p.quantity:
                    problem(
                        "position_fills",
                        f"position {p.pk}: quantity {p.quantity}, opening fills {[f.quantity for f in opening]}",
                    )
                    failing.add(bot.pk)
                closed_qty = sum((f.quantity for f in closing), Decimal(0)) * size
                if (p.status == Position.Status.CLOSED and closed_qty != p.quantity) or (
                    p.status == Position.Status.OPEN and closed_qty
                ):
                    problem(
                        "position_fills",
                        f"position {p.pk} ({p.status}): quantity {p.quantity}, closing fills {closed_qty}",
                    )
                    failing.add(bot.pk)
                fill_fees = sum((f.fee for f in opening + closing), Decimal(0))
                if fill_fees != p.fees:
                    problem("position_fees", f"position {p.pk}: fees {p.fees}, fills' fees {fill_fees}")
                    failing.add(bot.pk)
            snapshot = EquitySnapshot.objects.filter(bot=bot).order_by("-time", "-pk").first()
            if snapshot is None:
                continue
            open_then = [
                p
                for p in positions
                if p.opened_at <= snapshot.time and (p.closed_at is None or p.closed_at > snapshot.time)
            ]
            margin_then = sum((p.margin for p in open_then), Decimal(0))
            if snapshot.equity != snapshot.cash + margin_then + snapshot.unrealized_pnl:
                problem(
                    "equity",
                    f"bot {bot.pk}: equity {snapshot.equity} != {snapshot.cash} + {margin_then} + {snapshot.unrealized_pnl}",
                )
                failing.add(bot.pk)
            if last_fill.get(bot.pk, snapshot.time) <= snapshot.time and snapshot.cash != bot.cash:
                problem("equity_cash", f"bot {bot.pk}: last snapshot's cash {snapshot.cash} != cash {bot.cash}")
                failing.add(bot.pk)
        return {
            "bots_checked": len(bots),
            "bots_failing": len(failing),
            "problems": dict(problems),
            "examples": examples,
        }

    def ledger_check(self) -> dict[str, Any] | None:
        if not ledger_check_available():
            return None
        done = subprocess.run(
            [sys.executable, str(BASE_DIR / "manage.py"), "ledger_check"],
            cwd=BASE_DIR,
            env=self.platform.env("ledger-check"),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        return {"exit_code": done.returncode, "output_tail": (done.stdout + done.stderr).strip().splitlines()[-10:]}

    def activity(self) -> dict[str, Any]:
        from trading.models import Fill, Order, Position

        return {
            "orders": dict(Counter(f"{i}/{s}" for i, s in Order.objects.values_list("intent", "status"))),
            "fills": Fill.objects.count(),
            "positions_opened": Position.objects.count(),
            "positions_closed": Position.objects.filter(status=Position.Status.CLOSED).count(),
        }


def render(r: dict[str, Any]) -> str:
    c, m, cy, sl = r["config"], r["machine"], r["cycles"], r["slots"]
    out = [
        "",
        f"fault drill: {c['bots']} trading baseline bots every {c['interval_s']} s (a candle every {c['candle_seconds']} s), "
        f"lease {c['lease_s']:.0f} s, {c['concurrency']} threads per worker, {c['database']}; {r['duration_s']} s",
        f"machine: load {m['load_at_start']} at start, {m['load_at_end']} at end (1-min max {fmt(m['load1_max'], 2)})",
        "",
        "Rounds (cycles/failed/lost/skipped/stuck: slots due from one interval before the round began; "
        "recovery: fault end -> end of the first new cycle that completed):",
        table(
            ["round", "at", "lasted", "worker ready", "recovery", "cycles", "failed", "lost", "skipped", "stuck", "note"],
            [
                [f"{x['fault']} {x['n']}" if x["fault"] not in ("warm-up", "settle") else x["fault"],
                 fmt(x["at_s"], 0, " s"), fmt(x["lasted_s"], 1, " s"), fmt(x["worker_ready_s"], 1, " s"),
                 fmt(x["recovery_s"], 1, " s"), x["cycles"], x["failed"], x["lost"], x["skipped"], x["stuck"], x["note"]]
                for x in r["rounds"]
            ],
        ),  # fmt: skip
        "",
        "Invariants:",
        f"  duplicate client order ids          {r['duplicates']['client_order_ids']}",
        f"  duplicate (bot, slot) cycles         {r['duplicates']['bot_slot_cycles']}",
        f"  orders with several fills            {r['duplicates']['orders_with_several_fills']}",
        f"  several open positions (bot, symbol) {r['duplicates']['open_positions_per_bot_symbol']}",
        f"  cycles unfinished past two leases    {cy['stuck_past_two_leases']} (past the risk stage {cy['stuck_past_risk_stage']}, "
        f"with filled orders {cy['stuck_with_filled_orders']}); unfinished at the end {cy['running_at_end']}",
        f"  claimed slots without a record       {sl['claimed_without_record']} (of {sl['claims_logged']:,} claims; "
        f"{sl['claimed_not_enqueued']} claimed but never enqueued)",
        f"  silently skipped slots               {sl['silently_skipped']} (slots off the grid: {sl['off_grid']})",
        f"  books reconciled                     {r['books']['bots_checked'] - r['books']['bots_failing']} of "
        f"{r['books']['bots_checked']} bots" + (f"; problems {r['books']['problems']}" if r["books"]["problems"] else ""),
    ]  # fmt: skip
    out += [f"    {e}" for e in r["books"]["examples"]]
    ledger = r["ledger_check"]
    out.append(
        "  manage.py ledger_check               "
        + (
            "(not in this version of the platform: the bench's own check above)"
            if ledger is None
            else f"exit {ledger['exit_code']}"
        )
    )
    if ledger is not None:
        out += [f"    {line}" for line in ledger["output_tail"]]
    out += [
        "",
        f"cycles: {cy['rows']:,} rows ({', '.join(f'{k} {v:,}' for k, v in sorted(cy['by_status'].items()))}); "
        f"{cy['resumed_attempts_gt_1']} resumed (attempts > 1)",
        f"trading: {r['activity']['fills']:,} fills, {r['activity']['positions_opened']:,} positions opened, "
        f"{r['activity']['positions_closed']:,} closed; orders {r['activity']['orders']}",
        f"bots at the end: {r['bots']['by_status']}"
        + (f"; reasons {r['bots']['reasons']}" if r["bots"]["reasons"] else ""),
        f"slot accounting: {sl['method']}",
        "",
        "verdict: " + ("clean" if r["verdict"]["clean"] else "NOT clean (see above)"),
    ]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
