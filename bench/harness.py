"""Shared machinery of bench/scale.py and bench/drills.py: the processes they run and what they read.

- `Processes`: every child (PostgreSQL, Redis, the model server, workers, beat) is started here,
  in its own process group, with its output in a log file of the run directory and a parent-death
  signal (Linux, through util-linux's `setpriv`), and `cleanup()` stops all of them: on a normal end, on an exception, on Ctrl-C
  or SIGTERM (the scripts call it from `finally`; an `atexit` hook is the backstop). A bench
  killed with SIGKILL still takes its children with it through the parent-death signal.
- `PrivatePostgres`: a throwaway PostgreSQL cluster (the Debian binaries, run as the `postgres`
  user when we are root) with `pg_stat_statements` preloaded. Its postmaster is the parent of
  every backend, and Linux adds an exited child's CPU time to its parent's `cutime/cstime` when
  the parent reaps it: so postmaster (own + reaped children) + live children is *all* the CPU the
  database used, including the short-lived backend of each Celery task, with nobody else's load
  mixed in. `--database-url` uses an existing server instead (its whole cluster's CPU is then
  reported, with that caveat).
- `PrivateRedis`: a redis-server of our own (`--save "" --appendonly no`) on a port of 6420-6429,
  so it can be killed with -9 and restarted empty without touching anyone else's.
- CPU: `/proc/<pid>/stat` utime+stime (all threads of a process), in clock ticks (10 ms).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
PG_BIN = Path("/usr/lib/postgresql/15/bin")
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_PORTS = range(6420, 6430)
QUEUES = ("cycles", "default")
KOMBU_PRIORITY_SEP = "\x06\x16"
KOMBU_PRIORITY_STEPS = (0, 3, 6, 9)
MONITOR_APP = "bench-monitor"
HARNESS_APP = "bench-harness"


class BenchError(Exception):
    """The bench cannot go on; the message says why."""


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def utcnow() -> datetime:
    return datetime.now(UTC)


# --- /proc ------------------------------------------------------------------------------------------


def loadavg() -> str:
    """The 1, 5 and 15-minute load averages, as /proc/loadavg has them."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def loadavg_1m() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already inside user/nice
    return total - idle, total


def proc_stat(pid: int) -> tuple[int, float, float] | None:
    """(ppid, own CPU s, reaped children's CPU s) of a process, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state): ppid is 4, utime 14, stime 15, cutime 16, cstime 17.
    ppid = int(fields[1])
    own = (int(fields[11]) + int(fields[12])) / CLK_TCK
    reaped = (int(fields[13]) + int(fields[14])) / CLK_TCK
    return ppid, own, reaped


def proc_cpu(pid: int) -> float:
    stat = proc_stat(pid)
    return 0.0 if stat is None else stat[1]


def children_of(ppid: int) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            stat = proc_stat(int(entry.name))
            if stat is not None and stat[0] == ppid:
                found.append(int(entry.name))
    return found


def tree_cpu(pid: int) -> float:
    """CPU of a process, of its children that exited and were reaped, and of its live children."""
    stat = proc_stat(pid)
    if stat is None:
        return 0.0
    return stat[1] + stat[2] + sum(proc_cpu(child) for child in children_of(pid))


# --- ports and logs ---------------------------------------------------------------------------------


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise BenchError(f"{what} did not happen within {timeout:.0f} s")


# --- processes ---------------------------------------------------------------------------------------

SETPRIV = shutil.which("setpriv")
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
PR_SET_PDEATHSIG = 1


def _launch(argv: list[str], deathsig: int, user: str | None) -> tuple[list[str], Callable[[], None] | None]:
    """The command line (and preexec function) that runs `argv` as `user` with a parent-death signal.

    util-linux's `setpriv` does both without a preexec_fn in our process (unsafe once threads run,
    and the drills restart processes while the monitor thread runs); without it, a preexec_fn.
    """
    if SETPRIV:
        prefix = [SETPRIV]
        if user:
            prefix += ["--reuid", user, "--regid", user, "--init-groups"]
        # setpriv changes the user first: a change of credentials would clear the signal.
        prefix += ["--pdeathsig", signal.Signals(deathsig).name.removeprefix("SIG"), "--"]
        return prefix + argv, None
    account = pwd.getpwnam(user) if user else None

    def run() -> None:
        if account is not None:
            os.setgid(account.pw_gid)
            os.setgroups([account.pw_gid])
            os.setuid(account.pw_uid)
        if _libc is not None:
            _libc.prctl(PR_SET_PDEATHSIG, deathsig)

    return argv, run


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    stop_signal: int = signal.SIGTERM

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 15) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


class Processes:
    """Starts children and guarantees they are all stopped (see the module docstring)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.procs: list[Proc] = []
        self._log_numbers: dict[str, int] = {}
        atexit.register(self.cleanup)

    def start(
        self,
        name: str,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        cwd: Path = BASE_DIR,
        user: str | None = None,
        stop_signal: int = signal.SIGTERM,
        death_signal: int = signal.SIGKILL,
    ) -> Proc:
        number = self._log_numbers.get(name, 0) + 1
        self._log_numbers[name] = number
        log_path = self.run_dir / f"{name}.{number}.log"
        command, preexec = _launch(argv, death_signal, user)
        with open(log_path, "wb") as out:
            popen = subprocess.Popen(
                command,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a terminal's Ctrl-C reaches only the bench, which stops them
                preexec_fn=preexec,
            )
        proc = Proc(name=name, popen=popen, log_path=log_path, stop_signal=stop_signal)
        self.procs.append(proc)
        return proc

    def signal(self, proc: Proc, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signum)

    def kill(self, proc: Proc) -> None:
        """SIGKILL, as an operator's `kill -9` (the whole process group)."""
        self.signal(proc, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(timeout=10)

    def stop(self, proc: Proc, timeout: float = 30.0) -> None:
        """The process's own graceful stop signal, then SIGKILL after `timeout`."""
        if proc.alive():
            self.signal(proc, proc.stop_signal)
            try:
                proc.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log(f"{proc.name} (pid {proc.pid}) did not stop in {timeout:.0f} s: killing it")
                self.kill(proc)
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self, procs: Iterable[Proc], timeout: float = 30.0) -> None:
        procs = [p for p in procs if p.alive()]
        for proc in procs:
            self.signal(proc, proc.stop_signal)
        deadline = time.monotonic() + timeout
        for proc in procs:
            try:
                proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log(f"{proc.name} (pid {proc.pid}) did not stop in {timeout:.0f} s: killing it")
                self.kill(proc)
        for proc in procs:
            if proc in self.procs:
                self.procs.remove(proc)

    def cleanup(self) -> None:
        """Stop everything still running: platform processes first, the servers last."""
        order = {"beat": 0, "worker": 1, "llm": 2, "redis": 3, "postgres": 4}
        remaining = sorted(self.procs, key=lambda p: order.get(p.name.split("-")[0], 2))
        for proc in remaining:
            if proc.alive():
                self.stop(proc, timeout=15.0)
        self.procs.clear()


def install_signal_handlers() -> None:
    """SIGINT, SIGTERM and SIGHUP end the bench through the scripts' `finally` clean-up."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, handler)
    # Even when started with SIGINT ignored (a background job of a script): Ctrl-C still works.
    signal.signal(signal.SIGINT, signal.default_int_handler)


def make_run_dir(prefix: str) -> Path:
    run_dir = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
    run_dir.chmod(0o755)  # the postgres user must reach its data directory inside
    return run_dir


# --- Redis ------------------------------------------------------------------------------------------


class PrivateRedis:
    """A redis-server of the bench's own, which it may kill -9 and restart empty."""

    def __init__(self, processes: Processes, port: int | None = None) -> None:
        self.processes = processes
        self.port = port or self._pick_port()
        self.proc: Proc | None = None

    @staticmethod
    def _pick_port() -> int:
        for port in REDIS_PORTS:
            if not port_open(port):
                return port
        raise BenchError(f"no free port for the private Redis in {REDIS_PORTS.start}-{REDIS_PORTS.stop - 1}")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        if port_open(self.port):
            raise BenchError(f"port {self.port} is taken: the private Redis needs it (try --redis-port)")
        self.proc = self.processes.start(
            "redis",
            [
                REDIS_SERVER,
                "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(self.processes.run_dir), "--maxclients", "10000",
            ],
        )  # fmt: skip
        wait_for(lambda: port_open(self.port), timeout=15, what=f"the private Redis listening on {self.port}")

    def kill9(self) -> None:
        assert self.proc is not None
        self.processes.kill(self.proc)
        self.processes.procs.remove(self.proc)
        self.proc = None

    def client(self) -> Any:
        import redis

        return redis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.alive() else None


# --- PostgreSQL -------------------------------------------------------------------------------------


def pg_connect(dsn: str) -> Any:
    import psycopg

    return psycopg.connect(dsn, autocommit=True, connect_timeout=10)


def _with_params(url: str, **params: str) -> str:
    sep = "&" if "?" in url else "?"
    return url + sep + "&".join(f"{k}={v}" for k, v in params.items())


class Postgres:
    """Where the bench database lives: a private cluster, or a given server."""

    private: bool = False
    postmaster_pid: int | None = None

    def __init__(self, *, host: str, port: int, user: str, password: str = "", database: str) -> None:
        self.host, self.port, self.user, self.password, self.database = host, port, user, password, database

    def url(self, database: str | None = None, **params: str) -> str:
        auth = self.user + (f":{self.password}" if self.password else "")
        url = f"postgres://{auth}@{self.host}:{self.port}/{database or self.database}"
        return _with_params(url, **params) if params else url

    def connect(self, database: str = "postgres") -> Any:
        return pg_connect(self.url(database, application_name=MONITOR_APP))

    def recreate_database(self) -> None:
        if not self.database.startswith("bench_"):
            raise BenchError(f"the bench database must be named bench_*, not {self.database!r}")
        with self.connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.database}"')

    def drop_database(self) -> None:
        with contextlib.suppress(Exception), self.connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')

    def cluster_cpu(self) -> float | None:
        """All CPU of the cluster's processes (see the module docstring), or None if not ours."""
        if self.postmaster_pid is None:
            return None
        return tree_cpu(self.postmaster_pid)

    def stop(self) -> None:
        return None


class PrivatePostgres(Postgres):
    """A throwaway cluster in the run directory, pg_stat_statements preloaded."""

    private = True

    def __init__(self, processes: Processes, *, database: str, max_connections: int) -> None:
        super().__init__(host="127.0.0.1", port=free_port(), user="postgres", database=database)
        self.processes = processes
        self.max_connections = max_connections
        self.data_dir = processes.run_dir / "pgdata"
        self.socket_dir = processes.run_dir / "pgsock"
        self.proc: Proc | None = None
        self.os_user = "postgres" if os.geteuid() == 0 else None

    def start(self) -> None:
        if not (PG_BIN / "postgres").exists():
            raise BenchError(f"no PostgreSQL binaries in {PG_BIN}: pass --database-url to use a running server")
        for directory in (self.data_dir, self.socket_dir):
            directory.mkdir()
            if self.os_user:
                account = pwd.getpwnam(self.os_user)
                os.chown(directory, account.pw_uid, account.pw_gid)
        init = self.processes.start(
            "postgres-initdb",
            [str(PG_BIN / "initdb"), "-D", str(self.data_dir), "-U", "postgres", "-A", "trust", "-E", "UTF8",
             "--locale=C.UTF-8", "--no-sync"],
            user=self.os_user,
        )  # fmt: skip
        if init.popen.wait(timeout=120) != 0:
            raise BenchError(f"initdb failed:\n{init.log_tail()}")
        self.processes.procs.remove(init)
        self.proc = self.processes.start(
            "postgres",
            [
                str(PG_BIN / "postgres"), "-D", str(self.data_dir),
                "-c", f"port={self.port}", "-c", "listen_addresses=127.0.0.1",
                "-c", f"unix_socket_directories={self.socket_dir}",
                "-c", f"max_connections={self.max_connections}",
                "-c", "shared_preload_libraries=pg_stat_statements",
                "-c", "pg_stat_statements.track=top", "-c", "pg_stat_statements.max=10000",
                "-c", "cluster_name=bench",
                # The shared server's settings (128 MB buffers, fsync and synchronous commit on);
                # autovacuum on, as a production server has it.
                "-c", "shared_buffers=128MB", "-c", "fsync=on", "-c", "synchronous_commit=on",
            ],
            user=self.os_user,
            stop_signal=signal.SIGINT,  # fast shutdown: ends the sessions, does not wait for them
            death_signal=signal.SIGQUIT,  # immediate shutdown if the bench dies
        )  # fmt: skip
        wait_for(self._ready, timeout=60, what="the private PostgreSQL accepting connections")
        self.postmaster_pid = self.proc.pid
        with self.connect() as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")

    def _ready(self) -> bool:
        if self.proc is not None and not self.proc.alive():
            raise BenchError(f"the private PostgreSQL exited:\n{self.proc.log_tail()}")
        try:
            with self.connect():
                return True
        except Exception:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            self.processes.stop(self.proc, timeout=30)
            self.proc = None


class GivenPostgres(Postgres):
    """A running server named by --database-url; the bench database on it is dropped and recreated."""

    def __init__(self, url: str) -> None:
        import dj_database_url

        parsed = dj_database_url.parse(url)
        if parsed["ENGINE"] != "django.db.backends.postgresql":
            raise BenchError("--database-url must be a postgres:// URL")
        super().__init__(
            host=str(parsed["HOST"] or "127.0.0.1"),
            port=int(parsed["PORT"] or 5432),
            user=str(parsed["USER"] or "postgres"),
            password=str(parsed["PASSWORD"] or ""),
            database=str(parsed["NAME"]),
        )
        self.postmaster_pid = self._find_postmaster()

    def _find_postmaster(self) -> int | None:
        """The local postmaster's pid (its whole cluster's CPU is then reported), if it is local."""
        if self.host not in ("127.0.0.1", "localhost"):
            return None
        try:
            with self.connect() as conn:
                data_dir = conn.execute("SHOW data_directory").fetchone()[0]
            pid_file = Path(data_dir) / "postmaster.pid"
            return int(pid_file.read_text().splitlines()[0])
        except Exception:
            return None


# --- the platform's processes -------------------------------------------------------------------------


@dataclass
class Platform:
    """Environment and command lines of the platform's worker and beat, as the launcher/compose run them."""

    database_url: str
    redis_url: str
    run_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    encryption_key: str = field(default_factory=lambda: _fernet_key())

    @property
    def stats_dir(self) -> Path:
        return self.run_dir / "stats"

    @property
    def claims_dir(self) -> Path:
        return self.run_dir / "claims"

    def env(self, role: str, *, claims: bool = False) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")}
        env = {
            **keep,
            "DJANGO_SETTINGS_MODULE": "tradingagent.settings",
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "SECRET_KEY": self.secret_key,
            "FIELD_ENCRYPTION_KEY": self.encryption_key,
            "DEBUG": "false",  # production: DEBUG would also record every query in memory
            "VAR_DIR": str(self.run_dir / "var"),
            "LOG_LEVEL": "info",
            "PYTHONUNBUFFERED": "1",
            "BENCH_STATS_DIR": str(self.stats_dir),
            "BENCH_ROLE": role,
            **self.extra_env,
        }
        if claims:
            env["BENCH_CLAIMS_DIR"] = str(self.claims_dir)
        return env

    def prepare(self) -> None:
        for directory in (self.stats_dir, self.claims_dir, self.run_dir / "var"):
            directory.mkdir(exist_ok=True)

    def worker_argv(self, name: str, concurrency: int) -> list[str]:
        # The launcher's and compose's worker: threads pool, both queues.
        return [
            sys.executable, "-m", "celery", "-A", "bench.celery_bench", "worker",
            "--pool", "threads", "--concurrency", str(concurrency), "-Q", ",".join(QUEUES),
            "--loglevel", "info", "-n", f"{name}@%h",
        ]  # fmt: skip

    def beat_argv(self, name: str) -> list[str]:
        schedule = self.run_dir / "var" / f"{name}-schedule"
        return [sys.executable, "-m", "celery", "-A", "bench.celery_bench", "beat", "--schedule", str(schedule),
                "--loglevel", "info"]  # fmt: skip

    def start_worker(self, processes: Processes, name: str, concurrency: int, *, claims: bool = False) -> Proc:
        return processes.start(
            f"worker-{name}", self.worker_argv(name, concurrency), env=self.env(f"worker-{name}", claims=claims)
        )

    def start_beat(self, processes: Processes, name: str) -> Proc:
        return processes.start(f"beat-{name}", self.beat_argv(name), env=self.env(f"beat-{name}"))


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def wait_worker_ready(proc: Proc, timeout: float = 120) -> None:
    def ready() -> bool:
        if not proc.alive():
            raise BenchError(f"{proc.name} exited with code {proc.popen.returncode}:\n{proc.log_tail()}")
        return re.search(r"@\S+ ready\.", proc.log_text()) is not None

    wait_for(ready, timeout=timeout, what=f"{proc.name} ready", interval=0.3)


def wait_beat_started(proc: Proc, timeout: float = 60) -> None:
    def started() -> bool:
        if not proc.alive():
            raise BenchError(f"{proc.name} exited with code {proc.popen.returncode}:\n{proc.log_tail()}")
        return "beat: Starting" in proc.log_text()

    wait_for(started, timeout=timeout, what=f"{proc.name} started", interval=0.3)


def setup_django(platform: Platform) -> None:
    """Configure this process's Django on the bench database (for seeding and reading results)."""
    env = platform.env("harness")
    for key in ("BENCH_STATS_DIR", "BENCH_ROLE", "BENCH_CLAIMS_DIR"):
        env.pop(key, None)
    env["DATABASE_URL"] = _with_params(platform.database_url, application_name=HARNESS_APP)
    os.environ.update(env)
    import django

    django.setup()


def read_stats(stats_dir: Path) -> dict[str, dict[str, Any]]:
    """The counters each worker/beat process wrote (bench/celery_bench.py), by file name."""
    stats: dict[str, dict[str, Any]] = {}
    for path in sorted(stats_dir.glob("*.json")):
        with contextlib.suppress(OSError, json.JSONDecodeError):
            stats[path.stem] = json.loads(path.read_text())
    return stats


def queue_depths(client: Any) -> dict[str, int]:
    """Messages waiting in each Celery queue (every kombu priority list) and unacknowledged."""
    pipe = client.pipeline(transaction=False)
    for queue in QUEUES:
        for step in KOMBU_PRIORITY_STEPS:
            pipe.llen(queue if step == 0 else f"{queue}{KOMBU_PRIORITY_SEP}{step}")
    pipe.hlen("unacked")
    values = pipe.execute()
    depths: dict[str, int] = {}
    for i, queue in enumerate(QUEUES):
        depths[queue] = sum(values[i * len(KOMBU_PRIORITY_STEPS) : (i + 1) * len(KOMBU_PRIORITY_STEPS)])
    depths["unacked"] = values[-1]
    return depths


class Monitor(threading.Thread):
    """Samples, once a second: the bench database's client connections, Redis clients and queues,
    and the 1-minute load average. Runs beside the platform; its own cost is a handful of reads."""

    def __init__(self, *, postgres: Postgres, redis_factory: Callable[[], Any], interval: float = 1.0) -> None:
        super().__init__(name="bench-monitor", daemon=True)
        self.postgres = postgres
        self.redis_factory = redis_factory
        self.interval = interval
        self.samples: list[dict[str, Any]] = []
        self.stop_event = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        pg = None
        client = None
        while not self.stop_event.is_set():
            sample: dict[str, Any] = {"t": time.time(), "load1": loadavg_1m()}
            try:
                if pg is None:
                    pg = self.postgres.connect()
                sample["pg_connections"] = pg.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND backend_type = 'client backend' "
                    "AND application_name <> ALL(%s)",
                    (self.postgres.database, [MONITOR_APP, HARNESS_APP]),
                ).fetchone()[0]
            except Exception:
                pg = None
            try:
                if client is None:
                    client = self.redis_factory()
                sample.update(queue_depths(client))
                sample["redis_clients"] = client.info("clients")["connected_clients"]
            except Exception:
                client = None
            with self.lock:
                self.samples.append(sample)
            self.stop_event.wait(self.interval)
        with contextlib.suppress(Exception):
            if pg is not None:
                pg.close()

    def stop(self) -> None:
        self.stop_event.set()
        self.join(timeout=5)

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.samples)


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile (a value that was measured), None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def fmt(value: float | None, digits: int = 1, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}{unit}"


def table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append(
            "  ".join(c.rjust(w) if n and i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def ledger_check_available() -> bool:
    from django.core.management import get_commands

    return "ledger_check" in get_commands()


# --- bots ---------------------------------------------------------------------------------------------

# The recorded markets (marketdata/data), as the demo trades them; capital in each quote currency.
MARKETS: dict[str, dict[str, Any]] = {
    "btc": {"exchange": "coinbase", "symbols": ["BTC/USD"], "timeframe": "1h", "capital": "10000"},
    "xrp": {"exchange": "binanceusdm", "symbols": ["XRP/USDT:USDT"], "timeframe": "5m", "capital": "10000"},
    "ethada": {"exchange": "binance", "symbols": ["ETH/BTC", "ADA/BTC"], "timeframe": "5m", "capital": "1"},
}
# (baseline, market) in rotation. "demo" is `manage.py seed_demo`'s six bots; "trading" leaves out
# the bots that never trade (hold) or trade once (buy and hold on BTC), so that positions open and
# close all the time.
MIXES: dict[str, list[tuple[str, str]]] = {
    "demo": [("ema_rsi", "btc"), ("buy_and_hold", "btc"), ("hold", "btc"), ("ema_rsi", "xrp"),
             ("buy_and_hold", "xrp"), ("ema_rsi", "ethada")],
    "trading": [("ema_rsi", "btc"), ("ema_rsi", "xrp"), ("ema_rsi", "ethada"), ("ema_rsi", "xrp"),
                ("buy_and_hold", "xrp")],
    "hold": [("hold", "btc")],
    "ema_rsi": [("ema_rsi", "btc"), ("ema_rsi", "xrp"), ("ema_rsi", "ethada")],
}  # fmt: skip
LLM_PROVIDER = "openai_compatible"
LLM_MODEL = "bench-model"


def seed_bots(
    *, count: int, kind: str, mix: str, interval: int, bots_per_user: int = 100, max_trades_per_day: int = 1000
) -> list[int]:
    """Create `count` active bots (baseline or LLM) with no slot yet (next_cycle_at NULL).

    The rows are what `bot_create` + `bot_start` write (funded paper account, active), inserted in
    bulk so 10,000 bots take seconds; each distinct configuration is first checked with the
    model's own validation (`full_clean`). The breakers' daily-loss and drawdown limits are wide,
    as in the demo: the replayed market moves days per hour and would otherwise pause the bots.
    """
    from decimal import Decimal

    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from bots.models import Bot

    users_model = get_user_model()
    n_users = max(1, -(-count // bots_per_user))
    users = []
    for i in range(n_users):
        user = users_model(username=f"bench-{i:04d}", email=f"bench-{i:04d}@example.invalid")
        user.set_unusable_password()
        users.append(user)
    users_model.objects.bulk_create(users, batch_size=1000)
    users = list(users_model.objects.filter(username__startswith="bench-").order_by("username"))
    today = timezone.now().date()
    rotation = MIXES[mix]
    checked: set[tuple[str, str]] = set()
    bots = []
    for i in range(count):
        model, market_key = rotation[i % len(rotation)]
        market = MARKETS[market_key]
        capital = Decimal(market["capital"])
        bot = Bot(
            owner=users[i // bots_per_user],
            name=f"bench-{i:05d}",
            provider="baseline" if kind == "baseline" else LLM_PROVIDER,
            model=model if kind == "baseline" else LLM_MODEL,
            exchange=market["exchange"],
            symbols=list(market["symbols"]),
            timeframe=market["timeframe"],
            starting_capital=capital,
            cash=capital,
            peak_equity=capital,
            day_start_equity=capital,
            day_start_date=today,
            interval_seconds=interval,
            max_trades_per_day=max_trades_per_day,
            daily_loss_limit_pct=Decimal(50),
            max_drawdown_pct=Decimal(60),
            status=Bot.Status.ACTIVE,
            next_cycle_at=None,
        )
        key = (bot.model, market_key)
        if key not in checked:
            bot.full_clean(validate_unique=False)
            checked.add(key)
        bots.append(bot)
    Bot.objects.bulk_create(bots, batch_size=1000)
    return list(Bot.objects.filter(name__startswith="bench-").values_list("pk", flat=True))


def slot_floor(at: datetime, interval: int) -> datetime:
    epoch = int(at.timestamp())
    return datetime.fromtimestamp(epoch - epoch % interval, tz=UTC)


def sleep_until(when: datetime, *, check: Callable[[], None] | None = None) -> None:
    while True:
        left = (when - utcnow()).total_seconds()
        if left <= 0:
            return
        if check is not None:
            check()
        time.sleep(min(left, 1.0))
