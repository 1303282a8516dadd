"""The platform as real processes for end-to-end tests: daphne, a Celery worker and beat.

They run against the test database pytest-django created (its name, e.g. `test_h4`), so a test
that uses them must use `transactional_db`: the processes only see committed rows.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import redis
from django.conf import settings

BASE_DIR = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_database_url() -> str:
    """A URL for the database this test process uses (pytest-django's test database)."""
    db = settings.DATABASES["default"]
    auth = quote(db["USER"] or "") + (f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def purge_celery_queues() -> None:
    """Drop messages a killed earlier run left in our Redis db (only the Celery queues)."""
    from tradingagent.celery import app

    with app.connection_for_write() as connection:
        for queue in ("default", "cycles"):
            try:
                connection.default_channel.queue_purge(queue)
            except Exception:  # a queue that never existed has nothing to purge
                pass


def forget_cached_market_data() -> None:
    """Drop the shared market data cache of our Redis db (keys `ta:md*` only).

    The worker stores candles in the database on its first fetch of a market; a cache left by an
    earlier test would let it skip that write, while each test starts with empty tables.
    """
    client = redis.Redis.from_url(settings.REDIS_URL)
    keys = list(client.scan_iter(match="ta:md*", count=1000))
    if keys:
        client.delete(*keys)


@dataclass
class Platform:
    port: int
    logs: dict[str, Path] = field(default_factory=dict)

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def log(self, name: str) -> str:
        return self.logs[name].read_text(errors="replace")


def _wait_for(predicate: object, *, timeout: float, what: str, platform: Platform) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    logs = "\n".join(f"--- {name} ---\n{platform.log(name)[-3000:]}" for name in platform.logs)
    raise TimeoutError(f"{what} not ready after {timeout} s\n{logs}")


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def running_platform(
    *, beat: bool = True, worker: bool = True, extra_env: dict[str, str] | None = None
) -> Iterator[Platform]:
    """Start web (daphne), worker (threads pool) and beat (1 s dispatcher tick); stop them after.

    `worker=False` and `beat=False` start only what a test needs (daphne alone for plain HTTP).
    """
    purge_celery_queues()
    forget_cached_market_data()
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="ta-e2e-"))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": test_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "DISPATCHER_TICK_SECONDS": "1",
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    python = sys.executable
    commands = {
        "web": [python, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "tradingagent.asgi:application"],
        "worker": [
            python,
            "-m",
            "celery",
            "-A",
            "tradingagent",
            "worker",
            "--pool",
            "threads",
            "--concurrency",
            "4",
            "-Q",
            "default,cycles",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "INFO",
            "--hostname",
            f"e2e-{port}@%h",
        ],
    }
    if not worker:
        del commands["worker"]
    if beat:
        commands["beat"] = [
            python,
            "-m",
            "celery",
            "-A",
            "tradingagent",
            "beat",
            "--loglevel",
            "INFO",
            "--schedule",
            str(workdir / "beat-schedule"),
            "--pidfile",
            "",
        ]
    platform = Platform(port=port)
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, argv in commands.items():
            platform.logs[name] = workdir / f"{name}.log"
            with platform.logs[name].open("wb") as out:
                processes[name] = subprocess.Popen(argv, cwd=BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT)
        _wait_for(lambda: _listening(port), timeout=30, what="daphne", platform=platform)
        if worker:
            _wait_for(lambda: " ready." in platform.log("worker"), timeout=60, what="celery worker", platform=platform)
        if beat:
            _wait_for(
                lambda: "beat: Starting" in platform.log("beat"), timeout=30, what="celery beat", platform=platform
            )
        yield platform
    finally:
        for name in ("beat", "web", "worker"):
            process = processes.get(name)
            if process is not None and process.poll() is None:
                process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
