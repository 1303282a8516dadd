"""Database connections under load: 32 concurrent API clients against a real daphne on PostgreSQL
hold at most DB_POOL_MAX_SIZE connections (psycopg's pool), instead of one per thread that served
a request (the persistent connections that exhausted PostgreSQL before)."""

from __future__ import annotations

import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from django.db import connection
from rest_framework_simplejwt.tokens import RefreshToken

from tests.factories import BotFactory
from tests.realtime.servers import running_platform

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CLIENTS = 32
REQUESTS_EACH = 8
POOL_MAX = 4


def connections_of(application_name: str) -> int:
    # A connection of its own (not Django's pool of this process), closed at once.
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s",
            [application_name],
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_32_concurrent_api_clients_stay_within_the_pool(user):
    for i in range(3):
        BotFactory(owner=user, name=f"bot-{i}")
    access = str(RefreshToken.for_user(user).access_token)
    app_name = f"ta-conn-test-{time.monotonic_ns()}"  # libpq's PGAPPNAME names daphne's connections
    extra = {"DB_POOL_MAX_SIZE": str(POOL_MAX), "DB_POOL_TIMEOUT": "30", "PGAPPNAME": app_name}
    peak = 0
    statuses: list[int] = []

    with running_platform(worker=False, beat=False, extra_env=extra) as platform:
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, connections_of(app_name))
                time.sleep(0.02)

        def client(index: int) -> list[int]:
            answers = []
            for _ in range(REQUESTS_EACH):
                request = urllib.request.Request(
                    f"{platform.http}/api/bots/", headers={"Authorization": f"Bearer {access}"}
                )
                with urllib.request.urlopen(request, timeout=60) as response:
                    answers.append(response.status)
            return answers

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
            for answers in pool.map(client, range(CLIENTS)):
                statuses.extend(answers)
        elapsed = time.monotonic() - started
        time.sleep(0.3)
        done.set()
        sampler.join(timeout=5)
        after = connections_of(app_name)

    print(
        f"{CLIENTS} clients x {REQUESTS_EACH} requests: {len(statuses)} answers in {elapsed:.1f} s; "
        f"peak PostgreSQL connections of daphne {peak} (pool max {POOL_MAX}); {after} after the load"
    )
    assert statuses == [200] * CLIENTS * REQUESTS_EACH
    assert 1 <= peak <= POOL_MAX
