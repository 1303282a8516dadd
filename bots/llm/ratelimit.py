"""A per-model request rate limit shared by every worker, kept in Redis.

Sliding window log: one sorted set per (provider, model) holds the time of every request of the
last window; a Lua script drops the expired ones, counts, and either records the new request or
says how long until the oldest one leaves the window. The script runs atomically in Redis and
reads Redis' own clock, so workers on different hosts with skewed clocks still share one window.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable

import redis
from django.conf import settings

from core.redis import redis_client

logger = logging.getLogger(__name__)

KEY_PREFIX = "ta:llm:ratelimit"

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local wait = tonumber(oldest[2]) + window - now
if wait < 1 then wait = 1 end
return wait
"""


def rate_limit_key(provider: str, model: str, *, prefix: str = KEY_PREFIX) -> str:
    return f"{prefix}:{provider}:{model}"


class RateLimiter:
    """`acquire` takes one request slot of a (provider, model), waiting up to `wait_seconds`."""

    def __init__(
        self,
        *,
        limit: int,
        window_seconds: float = 60.0,
        redis_url: str | None = None,
        key_prefix: str = KEY_PREFIX,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limit = limit
        self.key_prefix = key_prefix
        self.window_ms = max(1, int(window_seconds * 1000))
        self._redis = redis_client(url=redis_url, socket_timeout=5)
        self._script = self._redis.register_script(_ACQUIRE)
        self._sleep = sleep

    def key(self, provider: str, model: str) -> str:
        return rate_limit_key(provider, model, prefix=self.key_prefix)

    def try_acquire(self, key: str) -> float:
        """Take a slot now and return 0, or return the seconds until one may free up."""
        wait_ms = int(self._script(keys=[key], args=[self.limit, self.window_ms, uuid.uuid4().hex]))
        return wait_ms / 1000

    def acquire(self, key: str, *, wait_seconds: float) -> bool:
        """True when a slot was taken within `wait_seconds`; False means skip this request.

        A Redis failure lets the request through (logged): the provider's own 429s are still
        retried, and a broken limiter must not stop every bot.
        """
        deadline = time.monotonic() + max(0.0, wait_seconds)
        while True:
            try:
                wait = self.try_acquire(key)
            except redis.RedisError as exc:
                logger.warning("LLM rate limiter unavailable, letting the request through: %s", exc)
                return True
            if wait == 0:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            # Jitter spreads the waiters so they do not all retry on the same millisecond.
            self._sleep(min(remaining, wait + random.uniform(0, 0.05)))


def default_limiter() -> RateLimiter:
    return RateLimiter(limit=int(settings.LLM_RATE_LIMIT_PER_MINUTE))
