"""compose.yaml and the launcher: every service is complete and every command targets something real.

No Docker engine runs here, so instead of starting the stack this parses compose.yaml and checks
each command against the installed programs: Django management commands are known to Django, the
Celery app resolves the way `celery -A` resolves it and every option exists on its subcommand,
daphne's arguments parse and its application imports. The launcher's commands get the same check.
"""

from __future__ import annotations

import importlib
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.conf import settings

BASE_DIR = Path(__file__).resolve().parent.parent
COMPOSE_FILE = BASE_DIR / "compose.yaml"
APP_SERVICES = ("web", "worker", "alerts-worker", "telegram", "beat", "flower")
# Set by Docker in every container; not ours to document.
CONTAINER_VARIABLES = {"HOSTNAME"}


def load_compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


def readme_table_variables() -> set[str]:
    """Names in the first cell of every markdown table row of the README."""
    names: set[str] = set()
    for line in (BASE_DIR / "README.md").read_text().splitlines():
        if line.startswith("|"):
            first_cell = line.split("|")[1]
            names.update(re.findall(r"`([A-Z][A-Z0-9_]*)`", first_cell))
    return names


def _expand(token: str) -> str:
    # Compose turns `$$` into `$`; the shell then expands `${NAME:-default}`: use the default.
    token = token.replace("$$", "$")
    token = re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", token)
    return re.sub(r"\$\{?([A-Z0-9_]+)\}?", "value", token)


def command_argv(command: str | list[str]) -> list[str]:
    argv = shlex.split(command) if isinstance(command, str) else [str(part) for part in command]
    if argv[:1] in (["CMD"], ["CMD-SHELL"]):
        argv = shlex.split(argv[1]) if argv[0] == "CMD-SHELL" else argv[1:]
    if argv[:2] == ["sh", "-c"]:
        argv = shlex.split(argv[2])
    if argv[:1] == ["exec"]:
        argv = argv[1:]
    return [_expand(part) for part in argv]


def _is_python(program: str) -> bool:
    return program == sys.executable or Path(program).name in ("python", "python3", "python3.11")


def check_celery(args: list[str]) -> None:
    from celery import Celery
    from celery.app.control import Inspect
    from celery.app.utils import find_app
    from celery.bin.celery import celery as celery_cli
    from celery.concurrency import get_available_pool_names

    assert args[:1] in (["-A"], ["--app"]), f"celery must be told the app with -A: {args}"
    app = find_app(args[1])  # exactly how `celery -A <name>` finds it
    assert isinstance(app, Celery), f"-A {args[1]} does not resolve to a Celery app"
    subcommand, options = args[2], args[3:]
    assert subcommand in celery_cli.commands, f"celery has no subcommand {subcommand!r}"
    if subcommand == "flower":
        from flower.options import options as flower_options

        for option in options:
            name = option.lstrip("-").split("=", 1)[0]
            assert name in flower_options._options, f"flower has no option --{name}"
        return
    command = celery_cli.commands[subcommand]
    known = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    positional = []
    for i, option in enumerate(options):
        if not option.startswith("-"):
            if i == 0 or not options[i - 1].startswith("-") or options[i - 1].split("=")[0] not in known:
                positional.append(option)
            continue
        assert option.split("=", 1)[0] in known, f"celery {subcommand} has no option {option}"
        if option in ("--pool", "-P"):
            assert options[i + 1] in get_available_pool_names(), f"unknown pool {options[i + 1]}"
    if subcommand == "inspect":
        assert positional and hasattr(Inspect, positional[0]), f"celery inspect has no {positional[:1]}"


def check_daphne(args: list[str]) -> None:
    from daphne.cli import CommandLineInterface

    try:
        parsed = CommandLineInterface().parser.parse_args(args)
    except SystemExit:
        pytest.fail(f"daphne rejects its arguments: {args}")
    module_name, attribute = parsed.application.split(":")
    application = getattr(importlib.import_module(module_name), attribute)
    assert callable(application)


def check_command_target(argv: list[str]) -> None:
    """Fail unless the program, its subcommand and its options exist in this installation."""
    from django.core.management import get_commands

    if _is_python(argv[0]):
        if argv[1] == "manage.py":
            assert argv[2] in get_commands(), f"manage.py has no command {argv[2]!r}"
            return
        if argv[1] == "-c":
            compile(argv[2], "<healthcheck>", "exec")
            return
        assert argv[1] == "-m", f"unexpected python invocation {argv}"
        argv = argv[2:]
    program, args = argv[0], argv[1:]
    if program == "celery":
        check_celery(args)
    elif program == "daphne":
        check_daphne(args)
    else:
        pytest.fail(f"unknown program {program!r} in {argv}")


def one_shot_services(services: dict[str, Any]) -> set[str]:
    return {name for name, service in services.items() if str(service.get("restart", "")) == "no"}


def test_compose_defines_the_platform_services() -> None:
    services = load_compose()["services"]
    assert {"postgres", "redis", *APP_SERVICES} <= set(services)
    assert str(services["postgres"]["image"]).startswith("postgres:16")
    assert str(services["redis"]["image"]).startswith("redis:7")


def test_every_long_running_service_has_a_healthcheck() -> None:
    services = load_compose()["services"]
    for name, service in services.items():
        if name in one_shot_services(services):
            continue
        healthcheck = service.get("healthcheck")
        assert healthcheck and not healthcheck.get("disable"), f"{name} has no healthcheck"
        assert healthcheck.get("test"), f"{name}'s healthcheck has no test"


def test_app_services_wait_for_healthy_backends_and_the_migration() -> None:
    services = load_compose()["services"]
    one_shots = one_shot_services(services)
    assert "migrate" in one_shots
    for name in APP_SERVICES:
        depends_on = services[name]["depends_on"]
        assert depends_on["postgres"]["condition"] == "service_healthy", name
        assert depends_on["redis"]["condition"] == "service_healthy", name
        for one_shot in one_shots:
            assert depends_on[one_shot]["condition"] == "service_completed_successfully", (name, one_shot)
        assert ".env" in services[name]["env_file"], f"{name} must read the secrets from .env"


def test_the_image_is_built_from_the_dockerfile() -> None:
    services = load_compose()["services"]
    for name in (*APP_SERVICES, "migrate"):
        context = BASE_DIR / str(services[name]["build"])
        assert (context / "Dockerfile").is_file(), name
    dockerfile = (BASE_DIR / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", dockerfile, re.MULTILINE)
    assert "pip install -r requirements.txt" in dockerfile
    ignored = (BASE_DIR / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".env" in ignored and ".git" in ignored


@pytest.mark.parametrize("service", ["migrate", *APP_SERVICES])
def test_service_command_targets_exist(service: str) -> None:
    spec = load_compose()["services"][service]
    check_command_target(command_argv(spec["command"]))


@pytest.mark.parametrize("service", ["web", "worker", "alerts-worker", "beat", "flower"])
def test_python_healthcheck_commands_target_exist(service: str) -> None:
    check_command_target(command_argv(load_compose()["services"][service]["healthcheck"]["test"]))


def test_workers_consume_every_queue_the_tasks_are_routed_to() -> None:
    queues: set[str] = set()
    for service in ("worker", "alerts-worker"):
        argv = command_argv(load_compose()["services"][service]["command"])
        queues |= set(argv[argv.index("-Q") + 1].split(","))
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    assert routed | {settings.CELERY_TASK_DEFAULT_QUEUE} <= queues


def test_every_variable_compose_uses_is_documented_in_the_readme() -> None:
    text = COMPOSE_FILE.read_text()
    referenced = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", text)) | set(re.findall(r"\$\$([A-Z][A-Z0-9_]*)", text))
    for service in load_compose()["services"].values():
        environment = service.get("environment") or {}
        referenced |= set(environment if isinstance(environment, dict) else (e.split("=")[0] for e in environment))
    missing = sorted(referenced - CONTAINER_VARIABLES - readme_table_variables())
    assert not missing, f"compose.yaml uses variables the README's tables do not list: {missing}"


def test_launcher_commands_target_exist() -> None:
    from tradingagent.launcher import child_specs

    specs = child_specs(python=sys.executable, settings=settings)
    assert [spec.name for spec in specs] == ["web", "worker", "alerts", "beat", "flower"]
    for spec in specs:
        check_command_target(spec.argv)
    # The launcher's workers, like compose's, consume every queue a task is routed to.
    queues = {q for spec in specs if "-Q" in spec.argv for q in spec.argv[spec.argv.index("-Q") + 1].split(",")}
    assert {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()} <= queues


def test_the_telegram_bot_runs_with_make_run_only_when_it_has_a_token(settings) -> None:  # type: ignore[no-untyped-def]
    from tradingagent.launcher import child_specs

    settings.TELEGRAM_BOT_TOKEN = "123:abc"
    [telegram] = [s for s in child_specs(python=sys.executable, settings=settings) if s.name == "telegram"]
    check_command_target(telegram.argv)


def test_command_checker_rejects_what_does_not_exist() -> None:
    # The checks above are only worth something if a wrong command fails them.
    wrong = [
        ["python", "manage.py", "no_such_command"],
        ["celery", "-A", "tradingagent", "wroker"],
        ["celery", "-A", "tradingagent", "worker", "--pool", "fibers"],
        ["celery", "-A", "tradingagent", "worker", "--no-such-option"],
        ["celery", "-A", "tradingagent", "flower", "--prot=5555"],
        ["daphne", "-b", "0.0.0.0", "tradingagent.asgi:no_such_app"],
        ["gunicorn", "tradingagent.wsgi"],
    ]
    for argv in wrong:
        with pytest.raises((AssertionError, AttributeError, pytest.fail.Exception)):
            check_command_target(argv)
