"""One Redis client per process, URL and timeout: redis-py clients are thread-safe and each holds
a connection pool, so every thread of a worker shares the pool instead of opening connections."""

from __future__ import annotations

import threading

import redis
from django.conf import settings

_clients: dict[tuple[str, float], redis.Redis] = {}
_lock = threading.Lock()


def redis_client(*, url: str | None = None, socket_timeout: float = 10.0) -> redis.Redis:
    """The client for `url` (default `settings.REDIS_URL`) whose reads time out after `socket_timeout` s."""
    url = url or str(settings.REDIS_URL)
    key = (url, socket_timeout)
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = redis.Redis.from_url(url, socket_timeout=socket_timeout, socket_connect_timeout=5)
            _clients[key] = client
        return client
