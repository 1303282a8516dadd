"""The shared Redis rate limit, under real concurrency (threads on Redis, as workers would)."""

from __future__ import annotations

import threading
import time
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


def test_a_waiting_user_gets_a_fair_share_of_the_window(limiter_prefix: str) -> None:
    limiter = RateLimiter(limit=10, window_seconds=1.0, key_prefix=limiter_prefix)
    key = limiter.key("openai", "gpt-5")

    # Alone, a user may use the whole window: no slot stays idle for fairness' sake.
    assert [limiter.try_acquire(key, user="alice", patience=5) for _ in range(10)] == [0] * 10
    # Bob arrives to a full window: refused, and now waiting (for the 5 s he will keep asking).
    assert limiter.try_acquire(key, user="bob", patience=5) > 0
    assert limiter.try_acquire(key, user="alice", patience=5) > 0

    time.sleep(1.05)  # the window slides past Alice's ten requests
    # While Bob waits, Alice gets half of the window (10 // 2 users), not all of it ...
    alice = [limiter.try_acquire(key, user="alice", patience=5) for _ in range(10)]
    assert alice.count(0) == 5 and alice[:5] == [0] * 5
    # ... and what she cannot take is Bob's: his share is there when he asks again.
    bob = [limiter.try_acquire(key, user="bob", patience=5) for _ in range(10)]
    assert bob.count(0) == 5 and bob[:5] == [0] * 5
    # Alice's refusals tell her to come back when her own requests have left the window.
    assert 0 < limiter.try_acquire(key, user="alice", patience=5) <= 1.0


def test_a_user_with_many_bots_cannot_keep_another_users_bot_idle(limiter_prefix: str) -> None:
    """Five workers of one user and one of another ask for the same model as fast as they can, for
    four windows. Without the fair share the five take nearly every slot as it frees (the lone
    worker got 0 or 1 of ~30 when it was switched off); with it, whenever the lone worker waits the
    five are held to half the window, and it gets about a third of all slots."""
    limiter = RateLimiter(limit=6, window_seconds=0.5, key_prefix=limiter_prefix)
    key = limiter.key("anthropic", "claude-sonnet-4-6")
    granted = {"many": 0, "one": 0}
    lock = threading.Lock()
    stop = threading.Event()

    def worker(user: str) -> None:
        while not stop.is_set():
            if limiter.acquire(key, user=user, wait_seconds=1.0):
                with lock:
                    granted[user] += 1

    threads = [threading.Thread(target=worker, args=("many",)) for _ in range(5)]
    threads.append(threading.Thread(target=worker, args=("one",)))
    for thread in threads:
        thread.start()
    time.sleep(2.0)
    stop.set()
    for thread in threads:
        thread.join()

    total = granted["many"] + granted["one"]
    assert total >= 12, granted  # the window was used
    assert granted["one"] >= total * 0.25, granted
