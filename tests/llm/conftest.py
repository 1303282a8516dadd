"""Fixtures of the LLM tests: a local server speaking the provider's protocol, settings pointing
the SDKs at it, and a rate limiter on keys of the test's own (deleted afterwards)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.conf import settings as django_settings

from bots.llm.ratelimit import RateLimiter
from tests.clock import FakeClock
from tests.llm.protocols import Protocol
from tests.llm.wire import WireServer


@pytest.fixture
def wire() -> Iterator[WireServer]:
    server = WireServer()
    yield server
    server.close()


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def limiter_prefix(redis_client: redis.Redis) -> Iterator[str]:
    prefix = f"test:llm:ratelimit:{uuid.uuid4().hex}"
    yield prefix
    for key in redis_client.scan_iter(f"{prefix}:*"):
        redis_client.delete(key)


@pytest.fixture
def limiter(limiter_prefix: str) -> RateLimiter:
    return RateLimiter(limit=1000, key_prefix=limiter_prefix)


@pytest.fixture
def sleeps(wire: WireServer) -> FakeClock:
    """The decision maker's clock in the retry tests: backoffs are recorded, not waited for.

    One thing a real backoff did on the side: it gave an attempt abandoned at its timeout the time
    to reach the server before the retry. Without it, under load, the retry's request could get
    there first and take the reply scripted for the abandoned one. So before retry n, wait (for
    real, at most 2 s) until the server has received n requests.
    """

    def requests_arrived(clock: FakeClock) -> None:
        deadline = time.monotonic() + 2.0
        while len(wire.requests) < len(clock.delays) and time.monotonic() < deadline:
            time.sleep(0.005)

    return FakeClock(before_sleep=requests_arrived)


@pytest.fixture
def llm_settings(settings: Any) -> Any:
    """Short timeouts and waits so failure cases run in about a second each."""
    settings.LLM_TIMEOUT_SECONDS = 2.0
    settings.LLM_MAX_RETRIES = 2
    settings.LLM_MAX_WAIT_SECONDS = 10.0
    settings.LLM_RATE_LIMIT_PER_MINUTE = 1000
    settings.LLM_RATE_LIMIT_WAIT_SECONDS = 1.0
    settings.LLM_MAX_OUTPUT_TOKENS = 2048
    settings.LLM_PRICES = {}
    return settings


def point_at(settings: Any, protocol: Protocol, server: WireServer) -> None:
    """Point the protocol's provider at the local server (base URL and key settings)."""
    setattr(settings, f"{protocol.settings_prefix}_BASE_URL", server.url + protocol.base_path)
    setattr(settings, f"{protocol.settings_prefix}_API_KEY", protocol.api_key)
    # The server refuses what the real API refuses (an empty text block, ...).
    server.check = protocol.check
