"""A per-model request rate limit shared by every worker, kept in Redis, with a fair share per user.

Sliding window log: one sorted set per (provider, model) holds the time of every request of the
last window, and one per (provider, model, user) the same user's requests. A Lua script runs
atomically in Redis on Redis' own clock (workers on different hosts with skewed clocks still share
one window): it drops the expired entries, then grants the request or says how long until one
may free up.

Fair share: a user waiting for a slot is recorded in a third sorted set (until their patience, the
time they will keep asking, runs out). While other users wait, a user may hold at most
`limit // (users waiting + 1)` requests of the window (at least one): the slots that free up go to
the users below their share, so one user's many bots cannot keep every other user's bots idle.
Nobody waiting, a user may use the whole window (no slot stays idle for fairness' sake).
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

# KEYS: the model's window, the user's window, the model's waiting users.
# ARGV: limit, window (ms), request id, user, patience (ms: how long the caller keeps asking).
# Returns 0 (granted) or the milliseconds until a retry may be granted.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local user = ARGV[4]
local patience = tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local used = redis.call('ZCARD', KEYS[1])
local mine = redis.call('ZCARD', KEYS[2])
local others = redis.call('ZCARD', KEYS[3])
if redis.call('ZSCORE', KEYS[3], user) then others = others - 1 end
local share = limit
if others > 0 then share = math.max(1, math.floor(limit / (others + 1))) end
if used < limit and mine < share then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('ZADD', KEYS[2], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  redis.call('PEXPIRE', KEYS[2], window)
  redis.call('ZREM', KEYS[3], user)
  return 0
end
if patience > 0 then
  redis.call('ZADD', KEYS[3], now + patience, user)
  local last = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', KEYS[3], tonumber(last[2]) + 1)
end
local free_at
if mine >= share then
  -- until enough of this user's own requests have left the window to be below the share again
  local entry = redis.call('ZRANGE', KEYS[2], mine - share, mine - share, 'WITHSCORES')
  free_at = tonumber(entry[2]) + window
else
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  free_at = tonumber(oldest[2]) + window
end
local wait = free_at - now
if wait < 1 then wait = 1 end
return wait
"""


def rate_limit_key(provider: str, model: str, *, prefix: str = KEY_PREFIX) -> str:
    return f"{prefix}:{provider}:{model}"


class RateLimiter:
    """`acquire` takes one request slot of a (provider, model) for a user, waiting up to `wait_seconds`."""

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

    def try_acquire(self, key: str, *, user: str = "", patience: float = 0.0) -> float:
        """Take a slot now and return 0, or return the seconds until one may free up for `user`.

        `patience` (seconds) is how long the caller will keep asking: meanwhile the user counts
        as waiting, and the others' share shrinks to make room. A user of "" shares with nobody
        in particular (tools such as llm_check)."""
        user = user or "-"
        wait_ms = int(
            self._script(
                keys=[key, f"{key}:user:{user}", f"{key}:waiting"],
                args=[self.limit, self.window_ms, uuid.uuid4().hex, user, max(0, int(patience * 1000))],
            )
        )
        return wait_ms / 1000

    def acquire(self, key: str, *, wait_seconds: float, user: str = "") -> bool:
        """True when a slot was taken within `wait_seconds`; False means skip this request.

        A Redis failure lets the request through (logged): the provider's own 429s are still
        retried, and a broken limiter must not stop every bot.
        """
        deadline = time.monotonic() + max(0.0, wait_seconds)
        while True:
            remaining = deadline - time.monotonic()
            try:
                wait = self.try_acquire(key, user=user, patience=max(0.0, remaining))
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
