"""A fake clock for code that sleeps between retries: the test does not wait, the code sees time pass.

`bots.llm` takes `sleep=` and `clock=` (LLMDecisionMaker): give it `fake.sleep` and `fake.monotonic`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class FakeClock:
    """Monotonic time that a sleep moves forward at once.

    `monotonic()` is the real monotonic time plus every second "slept" so far. So the code under
    test sees exactly the time it would see had it slept (its deadlines and its caps on the total
    wait hold as in production), while the test does not wait; real waits (a server answering
    late, an attempt's timeout) still take real time and count as such. `delays` records every
    sleep asked for, in order, for the test to check the backoff.
    """

    def __init__(self, *, before_sleep: Callable[[FakeClock], None] | None = None) -> None:
        self.delays: list[float] = []
        self._skipped = 0.0
        self._lock = threading.Lock()
        # Called (with this clock, `delays` already counting this sleep) before time moves on:
        # a test can wait there for what a real backoff would have let happen meanwhile.
        self._before_sleep = before_sleep

    def monotonic(self) -> float:
        return time.monotonic() + self._skipped

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.delays.append(seconds)
        if self._before_sleep is not None:
            self._before_sleep(self)
        with self._lock:
            self._skipped += max(0.0, seconds)
