"""Settings come from the environment: a malformed value stops start-up with a message naming it.

Each case runs `manage.py check` (and the launcher) in a subprocess with one bad variable, and
expects a non-zero exit, the variable's name in the message, and no traceback.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parent.parent
# A real Fernet key (32 url-safe base64 bytes), so only the variable under test is wrong.
FERNET_KEY = "dGVzdC1maWVsZC1lbmNyeXB0aW9uLWtleS0zMi1ieXQ="


def base_env(tmp_path: Path) -> dict[str, str]:
    """A complete, valid production-style environment (nothing inherited that could mask a case)."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "DJANGO_SETTINGS_MODULE": "tradingagent.settings",
        "DEBUG": "false",
        "SECRET_KEY": "a-test-secret-key",
        "FIELD_ENCRYPTION_KEY": FERNET_KEY,
        "VAR_DIR": str(tmp_path / "var"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'check.sqlite3'}",
        # Never contacted by `check`; set so manage.py does not start the embedded Redis.
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "FLOWER_BASIC_AUTH": "admin:a-test-password",
    }


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *argv], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120, check=False
    )


MALFORMED = [
    pytest.param({"DISPATCHER_TICK_SECONDS": "abc"}, "DISPATCHER_TICK_SECONDS", id="int-not-a-number"),
    pytest.param({"DISPATCHER_TICK_SECONDS": "0"}, "DISPATCHER_TICK_SECONDS", id="int-below-minimum"),
    pytest.param({"DATABASE_URL": "nonsense://"}, "DATABASE_URL", id="database-url-scheme"),
    pytest.param({"DEBUG": "maybe"}, "DEBUG", id="bool"),
    pytest.param({"SECRET_KEY": None}, "SECRET_KEY", id="secret-key-missing"),
    pytest.param({"FIELD_ENCRYPTION_KEY": None}, "FIELD_ENCRYPTION_KEY", id="encryption-key-missing"),
    pytest.param({"REDIS_URL": "http://127.0.0.1:6379/0"}, "REDIS_URL", id="redis-url-scheme"),
    pytest.param({"PORT": "99999"}, "PORT", id="port-out-of-range"),
    pytest.param({"FLOWER_PORT": "flower"}, "FLOWER_PORT", id="flower-port"),
    pytest.param({"WORKER_CONCURRENCY": "0"}, "WORKER_CONCURRENCY", id="worker-concurrency"),
    pytest.param({"LOG_LEVEL": "loud"}, "LOG_LEVEL", id="choice"),
    pytest.param({"MARKET_DATA_FEED": "carrier-pigeon"}, "MARKET_DATA_FEED", id="feed"),
    pytest.param({"PAPER_FEE_BPS": "five"}, "PAPER_FEE_BPS", id="decimal"),
    pytest.param({"BOT_MAX_LEVERAGE": "200"}, "BOT_MAX_LEVERAGE", id="leverage-cap-above-125"),
    pytest.param({"BOT_MIN_INTERVAL_SECONDS": "300"}, "BOT_MIN_INTERVAL_SECONDS", id="default-below-minimum"),
    pytest.param({"USER_LLM_DAILY_BUDGET": "lots"}, "USER_LLM_DAILY_BUDGET", id="budget-not-a-number-nor-off"),
    pytest.param({"BOT_DEFAULT_LLM_DAILY_BUDGET": "-1"}, "BOT_DEFAULT_LLM_DAILY_BUDGET", id="budget-negative"),
    pytest.param({"MAX_BOTS_PER_USER": "-1"}, "MAX_BOTS_PER_USER", id="bots-per-user-negative"),
    pytest.param({"CYCLE_SOFT_TIME_LIMIT": "200"}, "CYCLE_SOFT_TIME_LIMIT", id="soft-above-hard-limit"),
    pytest.param({"EMBEDDED_REDIS_PORT": "six"}, "EMBEDDED_REDIS_PORT", id="embedded-redis-port"),
]


def apply(env: dict[str, str], change: dict[str, str | None]) -> dict[str, str]:
    env = dict(env)
    for name, value in change.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


@pytest.mark.slow
def test_valid_environment_passes_check(tmp_path: Path) -> None:
    # The baseline of every case below: with nothing malformed, start-up succeeds.
    result = run(["manage.py", "check"], base_env(tmp_path))
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
@pytest.mark.parametrize(("change", "variable"), MALFORMED)
def test_malformed_variable_stops_manage_py(tmp_path: Path, change: dict[str, str | None], variable: str) -> None:
    result = run(["manage.py", "check"], apply(base_env(tmp_path), change))
    assert result.returncode != 0
    assert variable in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("change", "variable"),
    [
        pytest.param({"DATABASE_URL": "nonsense://"}, "DATABASE_URL", id="database-url"),
        pytest.param({"PORT": "http"}, "PORT", id="port"),
        pytest.param({"FLOWER_BASIC_AUTH": None}, "FLOWER_BASIC_AUTH", id="flower-auth-required-outside-debug"),
    ],
)
def test_malformed_variable_stops_the_launcher(tmp_path: Path, change: dict[str, str | None], variable: str) -> None:
    result = run(["-m", "tradingagent.launcher", "--no-migrate"], apply(base_env(tmp_path), change))
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert variable in output, output
    assert "Traceback" not in output, output


ENV_READ = re.compile(
    r"""env_(?:str|bool|int|decimal|list|choice)\(\s*["']([A-Z][A-Z0-9_]*)["']"""
    r"""|\b(?:os\.environ|environ|env)(?:\.get)?[\[(]\s*["']([A-Z][A-Z0-9_]*)["']"""
    r"""|os\.getenv\(\s*["']([A-Z][A-Z0-9_]*)["']"""
    r"""|["']([A-Z][A-Z0-9_]*)["']\s+(?:not\s+)?in\s+os\.environ"""
)


def environment_variables_read_by_the_code() -> set[str]:
    names: set[str] = set()
    for path in [BASE_DIR / "manage.py", *BASE_DIR.glob("*/**/*.py")]:
        relative = path.relative_to(BASE_DIR).parts
        if relative[0] in {".venv", "tests", "bench", "var", "node_modules"} or "migrations" in relative:
            continue
        for match in ENV_READ.finditer(path.read_text()):
            names.update(group for group in match.groups() if group)
    return names


def test_every_environment_variable_is_in_the_readme_table() -> None:
    readme = (BASE_DIR / "README.md").read_text()
    documented = set()
    for line in readme.splitlines():
        if line.startswith("|"):
            documented.update(re.findall(r"`([A-Z][A-Z0-9_]*)`", line.split("|")[1]))
    read = environment_variables_read_by_the_code()
    # The scan must find the core settings, or it is not scanning anything.
    assert {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG", "PORT"} <= read
    missing = sorted(read - documented)
    assert not missing, f"settings missing from the README's table: {missing}"
