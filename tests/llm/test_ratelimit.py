"""The shared Redis rate limit, under real concurrency (threads on Redis, as workers would)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from bots.llm.ratelimit import RateLimiter


def test_concurrent_requests_get_exactly_the_limit(limiter_prefix: str) -> None:
    limiters = [RateLimiter(limit=5, key_prefix=limiter_prefix) for _ in range(4)]  # four "workers"
    key = limiters[0].key("openai", "gpt-5")
    barrier = threading.Barrier(20)

    def request(i: int) -> bool:
        barrier.wait()
        return limiters[i % 4].acquire(key, wait_seconds=0)

    with ThreadPoolExecutor(max_workers=20) as pool:
        granted = list(pool.map(request, range(20)))

    assert granted.count(True) == 5


def test_waiters_get_slots_as_the_window_slides(limiter_prefix: str) -> None:
    limiter = RateLimiter(limit=3, window_seconds=0.5, key_prefix=limiter_prefix)
    key = limiter.key("anthropic", "claude-sonnet-4-6")

    with ThreadPoolExecutor(max_workers=6) as pool:
        granted = list(pool.map(lambda _: limiter.acquire(key, wait_seconds=5), range(6)))

    # Three at once, three more after the window moved on: nobody is refused within 5 s.
    assert granted == [True] * 6


def test_models_have_separate_windows(limiter_prefix: str) -> None:
    limiter = RateLimiter(limit=1, key_prefix=limiter_prefix)
    assert limiter.acquire(limiter.key("openai", "gpt-5"), wait_seconds=0)
    assert not limiter.acquire(limiter.key("openai", "gpt-5"), wait_seconds=0)
    assert limiter.acquire(limiter.key("openai", "gpt-5-mini"), wait_seconds=0)
    assert limiter.try_acquire(limiter.key("openai", "gpt-5")) > 0  # seconds until a slot frees
