"""The platform's Celery app with the counters the benches read (`celery -A bench.celery_bench`).

Workers and beat started by bench/scale.py and bench/drills.py run this module instead of
`-A tradingagent`: it imports the very same app (`tradingagent.celery.app`: same settings, queues,
routes, beat schedule and Django fixup) and, only when the bench asks for it through the
environment, adds two instruments:

- BENCH_STATS_DIR: every SQL statement Django sends (a `connection.execute_wrapper` installed on
  each new database connection), every new database session (`connection_created`) and the CPU
  time of the task's own thread (`time.thread_time()` between `task_prerun` and `task_postrun`)
  are counted per task name (`bots.tasks.run_trading_cycle`, `bots.tasks.dispatch_due_bots`, ...;
  `-` for anything outside a task), with a histogram of statements per cycle task. The counters
  are written as JSON to `<dir>/<role>-<pid>.json` every 2 s and at exit. Cost: one Python call
  and a lock per statement (about a microsecond, against milliseconds per statement).
- BENCH_CLAIMS_DIR: the dispatcher's enqueue step (`bots.tasks._enqueue_cycle`) is wrapped so that
  each claimed (bot, slot) is appended to `<dir>/claims-<pid>.log` *before* the message is sent
  ("C <unix time> <bot> <slot>"), and "E ..." once it was sent. A line is one `os.write` on an
  O_APPEND descriptor, so it survives a SIGKILL of the worker a moment later.

Statements not sent through a Django cursor (psycopg's own BEGIN/COMMIT, connection set-up) are
not seen here; scale.py counts those at the server with pg_stat_statements.
"""

from __future__ import annotations

import atexit
import json
import os
import threading
import time
from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

from tradingagent.celery import app

__all__ = ["app"]

OUTSIDE = "-"
CYCLE_TASK = "bots.tasks.run_trading_cycle"
DISPATCH_TASK = "bots.tasks.dispatch_due_bots"


class _Stats:
    def __init__(self, directory: str, role: str) -> None:
        self.path = os.path.join(directory, f"{role}-{os.getpid()}.json")
        self.role = role
        self.lock = threading.Lock()
        self.local = threading.local()
        self.tasks: Counter[str] = Counter()
        self.statements: dict[str, Counter[str]] = defaultdict(Counter)
        self.sessions: Counter[str] = Counter()
        self.thread_cpu: Counter[str] = Counter()
        self.per_cycle: Counter[int] = Counter()  # statements of one cycle task -> how many tasks

    # --- hooks ------------------------------------------------------------------------------------

    def current(self) -> str:
        return getattr(self.local, "task", OUTSIDE)

    def wrapper(self, execute: Any, sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
        kind = sql.lstrip().split(None, 1)[0].upper() if sql and sql.strip() else "?"
        name = self.current()
        with self.lock:
            self.statements[name][kind] += 1
        if name != OUTSIDE:
            self.local.count = getattr(self.local, "count", 0) + 1
        return execute(sql, params, many, context)

    def on_connection(self, sender: Any, connection: Any, **kwargs: Any) -> None:
        if self.wrapper not in connection.execute_wrappers:
            connection.execute_wrappers.append(self.wrapper)
        with self.lock:
            self.sessions[self.current()] += 1

    def on_prerun(self, task: Any = None, **kwargs: Any) -> None:
        self.local.task = getattr(task, "name", None) or "?"
        self.local.count = 0
        self.local.cpu = time.thread_time()

    def on_postrun(self, task: Any = None, **kwargs: Any) -> None:
        name = self.current()
        cpu = time.thread_time() - getattr(self.local, "cpu", time.thread_time())
        with self.lock:
            self.tasks[name] += 1
            self.thread_cpu[name] += cpu
            if name == CYCLE_TASK:
                self.per_cycle[getattr(self.local, "count", 0)] += 1
        self.local.task = OUTSIDE

    # --- output -----------------------------------------------------------------------------------

    def write(self) -> None:
        with self.lock:
            data = {
                "pid": os.getpid(),
                "role": self.role,
                "time": time.time(),
                "tasks": dict(self.tasks),
                "statements": {name: dict(kinds) for name, kinds in self.statements.items()},
                "sessions": dict(self.sessions),
                "thread_cpu_seconds": dict(self.thread_cpu),
                "statements_per_cycle_task": {str(k): v for k, v in self.per_cycle.items()},
            }
        tmp = f"{self.path}.tmp"
        with open(tmp, "w") as out:
            json.dump(data, out)
        os.replace(tmp, self.path)

    def flush_forever(self) -> None:
        while True:
            time.sleep(2)
            try:
                self.write()
            except OSError:
                pass


def _install_stats(directory: str, role: str) -> None:
    from celery import signals
    from django.db.backends.signals import connection_created

    stats = _Stats(directory, role)
    connection_created.connect(stats.on_connection, weak=False)
    signals.task_prerun.connect(stats.on_prerun, weak=False)
    signals.task_postrun.connect(stats.on_postrun, weak=False)
    threading.Thread(target=stats.flush_forever, name="bench-stats", daemon=True).start()
    atexit.register(stats.write)


class _ClaimsLog:
    def __init__(self, directory: str) -> None:
        self.fd = os.open(os.path.join(directory, f"claims-{os.getpid()}.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        self.lock = threading.Lock()
        self.patched = False

    def line(self, mark: str, bot_id: int, slot: datetime) -> None:
        os.write(self.fd, f"{mark} {time.time():.3f} {bot_id} {slot.isoformat()}\n".encode())

    def patch(self, **kwargs: Any) -> None:
        task = kwargs.get("task")
        if self.patched or getattr(task, "name", "") != DISPATCH_TASK:
            return
        with self.lock:
            if self.patched:
                return
            import bots.tasks

            original = getattr(bots.tasks, "_enqueue_cycle", None)
            if original is None:
                # The dispatcher was restructured: the drill falls back to the slot grid alone.
                self.patched = True
                return

            def logged(*args: Any, **kw: Any) -> Any:
                # Logged only when called as today's (bot_id, slot, interval): a restructured
                # dispatcher with another signature is passed through untouched.
                bot_id, slot = (*args, None, None)[:2]
                known = isinstance(bot_id, int) and isinstance(slot, datetime)
                if known:
                    self.line("C", bot_id, slot)
                result = original(*args, **kw)
                if known:
                    self.line("E", bot_id, slot)
                return result

            bots.tasks._enqueue_cycle = logged
            self.patched = True


def _install_claims(directory: str) -> None:
    from celery import signals

    claims = _ClaimsLog(directory)
    signals.task_prerun.connect(claims.patch, weak=False)


if os.environ.get("BENCH_STATS_DIR"):
    _install_stats(os.environ["BENCH_STATS_DIR"], os.environ.get("BENCH_ROLE", "proc"))
if os.environ.get("BENCH_CLAIMS_DIR"):
    _install_claims(os.environ["BENCH_CLAIMS_DIR"])
