"""A production deployment: `check --deploy` is clean with production-like settings, the demo
cannot be seeded there, the admin account has a generated password shown once, the settings
parse from the environment, and compose keeps Flower on the host's loopback."""

from __future__ import annotations

import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.test_settings_env import base_env, run

BASE_DIR = Path(__file__).resolve().parent.parent


def production_env(tmp_path: Path) -> dict[str, str]:
    return {
        **base_env(tmp_path),
        "SECRET_KEY": "p2Jx-8fQz_Lq3Wv9Yt6Hn1Bk4Rm7Cs0Dg5Fa2Je8Ku3Np6Tw9Xy1Zb4Vc7Md0Lh",
        "ALLOWED_HOSTS": "trading.example.com",
        "CSRF_TRUSTED_ORIGINS": "https://trading.example.com",
        "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto: https",
        "SITE_URL": "https://trading.example.com",
    }


def test_check_deploy_is_clean_with_production_settings(tmp_path: Path) -> None:
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], production_env(tmp_path))

    print(result.stdout, result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNINGS" not in result.stdout + result.stderr


def test_check_deploy_warns_when_the_safe_defaults_are_turned_off(tmp_path: Path) -> None:
    # The check above means something only if check --deploy sees these settings.
    env = {**production_env(tmp_path), "SECURE_SSL_REDIRECT": "false", "SESSION_COOKIE_SECURE": "false"}
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)

    assert result.returncode != 0
    assert "security.W008" in result.stderr + result.stdout and "security.W012" in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("change", "variable"),
    [
        ({"SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto"}, "SECURE_PROXY_SSL_HEADER"),
        ({"SECURE_HSTS_SECONDS": "a year"}, "SECURE_HSTS_SECONDS"),
        ({"SESSION_COOKIE_SAMESITE": "none"}, "SESSION_COOKIE_SAMESITE"),
        ({"ALLOW_REGISTRATION": "sometimes"}, "ALLOW_REGISTRATION"),
        ({"LOGIN_FAILURE_LIMIT": "0"}, "LOGIN_FAILURE_LIMIT"),
        ({"SITE_URL": "trading.example.com/app"}, "SITE_URL"),
        ({"EMAIL_USE_TLS": "true", "EMAIL_USE_SSL": "true"}, "EMAIL_USE_TLS"),
        ({"DB_POOL_MAX_SIZE": "0"}, "DB_POOL_MAX_SIZE"),
    ],
)
def test_malformed_security_settings_stop_start_up(tmp_path: Path, change: dict[str, str], variable: str) -> None:
    result = run(["manage.py", "check"], {**production_env(tmp_path), **change})

    assert result.returncode != 0 and variable in result.stderr and "Traceback" not in result.stderr


def test_production_defaults(tmp_path: Path) -> None:
    code = (
        "from django.conf import settings as s; "
        "print(s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD, "
        "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY, s.SECURE_PROXY_SSL_HEADER, "
        "s.ALLOW_REGISTRATION)"
    )
    env = production_env(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.stdout.split() == [
        "True", "31536000", "True", "True", "True", "True", "True", "('HTTP_X_FORWARDED_PROTO',", "'https')", "False",
    ], result.stderr  # fmt: skip


def test_seed_demo_refuses_outside_debug(tmp_path: Path) -> None:
    result = run(["manage.py", "seed_demo"], production_env(tmp_path))

    assert result.returncode == 1
    assert "seed_demo runs only with DEBUG=true" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.django_db
def test_seed_demo_makes_an_ordinary_demo_user_and_an_admin_shown_once(settings: Any) -> None:
    settings.DEBUG = True
    user_model = get_user_model()
    user_model.objects.create_user(username="demo", password="x", is_staff=True, is_superuser=True)  # an old seed
    first = StringIO()
    call_command("seed_demo", "--no-start", stdout=first)

    demo = user_model.objects.get(username="demo")
    assert not demo.is_superuser and not demo.is_staff
    admin = user_model.objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff
    [line] = [line for line in first.getvalue().splitlines() if line.startswith("admin login: admin / ")]
    password = line.split(" / ", 1)[1].split(" ", 1)[0]
    assert len(password) >= 20 and admin.check_password(password)

    second = StringIO()
    call_command("seed_demo", "--no-start", stdout=second)
    assert password not in second.getvalue() and "was printed when it was created" in second.getvalue()


@pytest.mark.django_db
def test_create_admin_prints_a_generated_password_once() -> None:
    out = StringIO()
    call_command("create_admin", "--username", "ops", "--email", "ops@example.com", stdout=out)
    password = out.getvalue().split("admin login: ops / ", 1)[1].split()[0]
    ops = get_user_model().objects.get(username="ops")
    assert ops.is_superuser and ops.check_password(password) and password not in ops.password

    with pytest.raises(CommandError, match="exists already"):
        call_command("create_admin", "--username", "ops", stdout=StringIO())
    again = StringIO()
    call_command("create_admin", "--username", "ops", "--reset-password", stdout=again)
    new_password = again.getvalue().split("admin login: ops / ", 1)[1].split()[0]
    ops.refresh_from_db()
    assert new_password != password and ops.check_password(new_password)


def test_compose_publishes_flower_on_the_loopback_only() -> None:
    services = yaml.safe_load((BASE_DIR / "compose.yaml").read_text())["services"]
    assert all(str(port).startswith("127.0.0.1:") for port in services["flower"]["ports"])
