"""Run the whole platform in one terminal: `python -m tradingagent.launcher` (what `make run` does).

It starts the embedded Redis when REDIS_URL is not set, applies migrations, optionally seeds the
demo (`--seed-demo`), then starts its children and supervises them:

    web       daphne -b 127.0.0.1 -p $PORT tradingagent.asgi:application
    worker    celery -A tradingagent worker --pool threads --concurrency $WORKER_CONCURRENCY -Q cycles,default
    alerts    celery -A tradingagent worker --pool threads --concurrency $ALERT_WORKER_CONCURRENCY -Q alerts
    beat      celery -A tradingagent beat --schedule $VAR_DIR/celerybeat-schedule
    flower    celery -A tradingagent flower --port $FLOWER_PORT
    telegram  manage.py telegram_bot   (only when TELEGRAM_BOT_TOKEN is set)

Alert deliveries have a worker of their own: a slow webhook or SMTP server then waits in its
threads, never in one a trading cycle could use.

Their output is forwarded line by line with the child's name as prefix. Ctrl-C (or SIGTERM) stops
every child gracefully, a second Ctrl-C kills them; when one child dies the others are stopped
too, because a platform without its worker or beat only looks alive. The embedded Redis is shut
down on exit if the launcher started it.

Static files are served by WhiteNoise inside the Django app (see settings), so daphne needs no
static handler in front of it.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

logger = logging.getLogger(__name__)

BASE_DIR = Path(__file__).resolve().parent.parent
# The order children are stopped in: beat first so nothing new is enqueued, the worker last so
# it can finish the cycles it holds (warm shutdown) while the rest is already gone.
STOP_ORDER = ("beat", "telegram", "web", "flower", "alerts", "worker")
READY_TIMEOUT_SECONDS = 90.0


class LaunchError(Exception):
    """Start-up cannot go on; the message says why and what to change."""


@dataclass(frozen=True)
class ChildSpec:
    """One long-running process of the platform."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    # A TCP port the child listens on when it is ready (None: no readiness port).
    port: int | None = None


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


def child_specs(*, python: str, settings: Any, host: str = "127.0.0.1") -> list[ChildSpec]:
    """The commands of web, the workers, beat, Flower (and the Telegram bot) for these settings."""
    loglevel = str(settings.LOG_LEVEL)
    celery = [python, "-m", "celery", "-A", "tradingagent"]
    flower_env: dict[str, str] = {}
    if settings.DEBUG:
        # Flower's HTTP API is open only on a development machine bound to loopback.
        flower_env["FLOWER_UNAUTHENTICATED_API"] = "true"
    var_dir = Path(settings.VAR_DIR)
    specs = [
        ChildSpec(
            name="web",
            argv=[python, "-m", "daphne", "-b", host, "-p", str(settings.PORT), "tradingagent.asgi:application"],
            port=int(settings.PORT),
        ),
        ChildSpec(
            name="worker",
            argv=[
                *celery,
                "worker",
                "--pool",
                "threads",
                "--concurrency",
                str(settings.WORKER_CONCURRENCY),
                "-Q",
                "cycles,default",
                "--loglevel",
                loglevel,
            ],
        ),  # fmt: skip
        ChildSpec(
            name="beat",
            argv=[*celery, "beat", "--schedule", str(var_dir / "celerybeat-schedule"), "--loglevel", loglevel],
        ),
        ChildSpec(
            name="flower",
            argv=[*celery, "flower", f"--port={settings.FLOWER_PORT}", f"--address={host}", f"--logging={loglevel}"],
            env=flower_env,
            port=int(settings.FLOWER_PORT),
        ),
    ]
    # Its own node name: two workers called celery@<host> would step on each other's identity.
    alerts = [*celery, "worker", "--pool", "threads", "--concurrency", str(settings.ALERT_WORKER_CONCURRENCY)]
    alerts += ["-Q", "alerts", "-n", "alerts@%h", "--loglevel", loglevel]
    specs.insert(2, ChildSpec(name="alerts", argv=alerts))
    if settings.TELEGRAM_BOT_TOKEN:
        specs.append(ChildSpec(name="telegram", argv=[python, "manage.py", "telegram_bot"]))
    return specs


class _Output:
    """Serialises the children's lines onto one stream, each with its child's name."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._closed = False
        self.width = len("launcher") + 1

    def line(self, name: str, text: str) -> None:
        self.block(f"{name:<{self.width}}| {text}\n")

    def block(self, text: str) -> None:
        with self._lock:
            if self._closed:
                return
            try:
                self._stream.write(text)
                self._stream.flush()
            except (BrokenPipeError, ValueError):
                # The reader went away (`make run | tee` and Ctrl-C kills tee first): keep going
                # silently, so the shutdown still stops every child and the embedded Redis.
                self._closed = True


def _pdeathsig_preexec() -> Callable[[], None] | None:
    """A preexec_fn asking Linux to SIGTERM the child if the launcher dies (even by SIGKILL).

    The children run in their own sessions (so a terminal's Ctrl-C reaches only the launcher,
    which then stops them in order); without this, a killed launcher would orphan them.
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)  # loaded before fork: no dlopen in the child
    pr_set_pdeathsig = 1

    def preexec() -> None:
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)

    return preexec


class Child:
    def __init__(self, spec: ChildSpec, process: subprocess.Popen[bytes]) -> None:
        self.spec = spec
        self.process = process
        self.reader: threading.Thread | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    def forward_output(self, output: _Output) -> None:
        def pump() -> None:
            assert self.process.stdout is not None
            for raw in iter(self.process.stdout.readline, b""):
                output.line(self.name, raw.decode("utf-8", errors="replace").rstrip("\r\n"))

        self.reader = threading.Thread(target=pump, name=f"output-{self.name}", daemon=True)
        self.reader.start()

    def signal_group(self, signum: int) -> None:
        # The child leads its own process group: signal the group so anything it spawned goes too.
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            pass


class Supervisor:
    """Starts children, forwards their output, and stops all of them together."""

    def __init__(
        self, specs: Sequence[ChildSpec], *, output: _Output, cwd: Path, base_env: dict[str, str], host: str
    ) -> None:
        self.specs = list(specs)
        self.host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        self.output = output
        self.cwd = cwd
        self.base_env = base_env
        self.children: list[Child] = []
        output.width = max([len(s.name) for s in self.specs] + [len("launcher")]) + 1

    def start(self) -> None:
        preexec = _pdeathsig_preexec()
        # Every fork happens before any output thread exists (preexec_fn is unsafe with threads).
        for spec in self.specs:
            env = {**self.base_env, **spec.env, "PYTHONUNBUFFERED": "1"}
            process = subprocess.Popen(
                spec.argv,
                cwd=self.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=preexec,
            )
            self.children.append(Child(spec, process))
            logger.debug("started %s (pid %s): %s", spec.name, process.pid, " ".join(spec.argv))
        for child in self.children:
            child.forward_output(self.output)

    def dead_child(self) -> Child | None:
        for child in self.children:
            if child.process.poll() is not None:
                return child
        return None

    def ready(self) -> bool:
        """True once every child with a port accepts connections on it."""
        return all(port_in_use(c.spec.port, self.host) for c in self.children if c.spec.port is not None)

    def stop(self, *, timeout: float, force: threading.Event | None = None) -> None:
        """SIGTERM every child (in STOP_ORDER), wait up to `timeout`, then SIGKILL the rest."""
        order = {name: i for i, name in enumerate(STOP_ORDER)}
        for child in sorted(self.children, key=lambda c: order.get(c.name, len(order))):
            if child.process.poll() is None:
                child.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in self.children:
            while child.process.poll() is None and time.monotonic() < deadline:
                if force is not None and force.is_set():
                    break
                time.sleep(0.1)
        for child in self.children:
            if child.process.poll() is None:
                self.output.line("launcher", f"{child.name} did not stop in time: killing it")
                child.signal_group(signal.SIGKILL)
                child.process.wait()
        for child in self.children:
            if child.reader is not None:
                child.reader.join(timeout=2)


def _run_step(name: str, argv: list[str], *, output: _Output, cwd: Path, env: dict[str, str]) -> list[str]:
    """Run a one-shot command (migrate, seed_demo), forwarding its output; return its lines."""
    result = subprocess.run(
        argv, cwd=cwd, env={**env, "PYTHONUNBUFFERED": "1"}, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False,
    )  # fmt: skip
    lines = result.stdout.decode("utf-8", errors="replace").splitlines()
    for text in lines:
        output.line(name, text)
    if result.returncode != 0:
        raise LaunchError(f"`{' '.join(argv[1:])}` failed with exit code {result.returncode}")
    return lines


def banner(*, settings: Any, host: str, demo_lines: Sequence[str]) -> str:
    base = f"http://{host}:{settings.PORT}"
    rows = [
        ("dashboard", f"{base}/"),
        ("admin", f"{base}/admin/"),
        ("API docs", f"{base}/api/docs/"),
        ("Flower", f"http://{host}:{settings.FLOWER_PORT}/"),
    ]
    text = ["", "tradingagent is running:"]
    text += [f"  {label:<10} {url}" for label, url in rows]
    login = [line.strip() for line in demo_lines if re.search(r"log ?in|password", line, re.IGNORECASE)]
    if login:
        text += [
            "",
            "Logins (the admin's password is shown once, when it is created):",
            *(f"  {line}" for line in login),
        ]
    text += ["", "Press Ctrl-C to stop everything.", ""]
    return "\n".join(text) + "\n"


def _load_settings() -> Any:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingagent.settings")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        settings.INSTALLED_APPS  # noqa: B018 - evaluate the settings now: a bad variable stops here
    except ImproperlyConfigured as exc:
        raise LaunchError(f"configuration error: {exc}") from None
    return settings


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tradingagent.launcher", description=__doc__.splitlines()[0])
    parser.add_argument("--seed-demo", action="store_true", help="run `manage.py seed_demo` before starting")
    parser.add_argument("--no-migrate", action="store_true", help="skip `manage.py migrate`")
    parser.add_argument("--host", default="127.0.0.1", help="address web and Flower bind to (default 127.0.0.1)")
    parser.add_argument("--stop-timeout", type=float, default=30.0, help="seconds children get to stop")
    return parser.parse_args(argv)


def _check_can_start(*, settings: Any, host: str) -> None:
    """Refuse to start what could not run or would be unsafe; create the folders the run writes."""
    if not settings.DEBUG and not os.environ.get("FLOWER_BASIC_AUTH"):
        raise LaunchError("FLOWER_BASIC_AUTH must be set (user:password) when DEBUG is off: Flower controls workers")
    for name in ("PORT", "FLOWER_PORT"):
        port = int(getattr(settings, name))
        if port_in_use(port, host):
            raise LaunchError(f"port {port} is already in use on {host}: set {name} to a free port")
    # The SQLite database, the beat schedule and the embedded Redis data live here; WhiteNoise
    # expects STATIC_ROOT to exist even when it serves from the app folders (DEBUG).
    Path(settings.VAR_DIR).mkdir(parents=True, exist_ok=True)
    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)


def _start_embedded_redis(*, settings: Any, output: _Output) -> bool:
    """Start the embedded Redis unless one runs; True if this launcher started it (and stops it)."""
    from tradingagent.embedded import ensure_embedded_redis

    try:
        started = ensure_embedded_redis(
            port=settings.EMBEDDED_REDIS_PORT, var_dir=Path(settings.VAR_DIR), password=settings.EMBEDDED_REDIS_PASSWORD
        )
    except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
        raise LaunchError(f"the embedded Redis did not start: {exc}") from None
    where = "started" if started else "already running"
    output.line("launcher", f"embedded Redis {where} on 127.0.0.1:{settings.EMBEDDED_REDIS_PORT}")
    return started


def _prepare(*, args: argparse.Namespace, env: dict[str, str], output: _Output) -> list[str]:
    """The one-shot steps before the services: migrate, then the demo bots; the demo's lines."""
    manage = [sys.executable, str(BASE_DIR / "manage.py")]
    if not args.no_migrate:
        _run_step("migrate", [*manage, "migrate", "--noinput"], output=output, cwd=BASE_DIR, env=env)
    if args.seed_demo:
        return _run_step("seed", [*manage, "seed_demo"], output=output, cwd=BASE_DIR, env=env)
    return []


def _supervise(
    *,
    supervisor: Supervisor,
    stop_requested: threading.Event,
    settings: Any,
    host: str,
    demo_lines: list[str],
    output: _Output,
) -> int:
    """Watch the children until a stop is requested (0) or one dies or never gets ready (1)."""
    announced = False
    ready_deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while not stop_requested.wait(0.25):
        dead = supervisor.dead_child()
        if dead is not None:
            output.line("launcher", f"{dead.name} exited with code {dead.process.returncode}: stopping everything")
            return 1
        if announced:
            continue
        if supervisor.ready():
            output.block(banner(settings=settings, host=host, demo_lines=demo_lines))
            announced = True
        elif time.monotonic() > ready_deadline:
            output.line("launcher", f"web and Flower did not open their ports in {READY_TIMEOUT_SECONDS:.0f} s")
            return 1
    return 0


def run(argv: Sequence[str] | None = None, *, stream: IO[str] | None = None) -> int:
    """Start everything and supervise it until a signal or a child's death; return the exit code."""
    args = _arguments(argv)
    output = _Output(stream or sys.stdout)

    stop_requested = threading.Event()
    force = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if stop_requested.is_set():
            force.set()  # a second Ctrl-C: do not wait for graceful shutdowns
        stop_requested.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    started_redis = False
    settings: Any = None
    supervisor: Supervisor | None = None
    exit_code = 0
    try:
        settings = _load_settings()
        _check_can_start(settings=settings, host=args.host)
        env = dict(os.environ)
        # The dashboard links to Flower; point it at the port Flower really gets.
        env.setdefault("FLOWER_URL", f"http://{args.host}:{settings.FLOWER_PORT}/")
        if settings.EMBEDDED_REDIS:
            started_redis = _start_embedded_redis(settings=settings, output=output)
        demo_lines = _prepare(args=args, env=env, output=output)
        if stop_requested.is_set():
            return 0
        supervisor = Supervisor(
            child_specs(python=sys.executable, settings=settings, host=args.host),
            output=output,
            cwd=BASE_DIR,
            base_env=env,
            host=args.host,
        )
        supervisor.start()
        exit_code = _supervise(
            supervisor=supervisor,
            stop_requested=stop_requested,
            settings=settings,
            host=args.host,
            demo_lines=demo_lines,
            output=output,
        )
    except LaunchError as exc:
        if stop_requested.is_set():
            # Ctrl-C reached the one-shot step too (same terminal): an interruption, not a failure.
            output.line("launcher", "interrupted")
        else:
            output.line("launcher", str(exc))
            exit_code = 2
    finally:
        if supervisor is not None:
            output.line("launcher", "stopping " + ", ".join(c.name for c in supervisor.children) + " ...")
            supervisor.stop(timeout=0 if force.is_set() else args.stop_timeout, force=force)
        if started_redis and settings is not None:
            from tradingagent.embedded import stop_embedded_redis

            stop_embedded_redis(port=settings.EMBEDDED_REDIS_PORT, password=settings.EMBEDDED_REDIS_PASSWORD)
            output.line("launcher", "embedded Redis stopped")
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if supervisor is not None:
        output.line("launcher", "stopped")
    return exit_code


def main() -> None:
    # The launcher reports its own progress through its output; only library trouble is logged.
    logging.basicConfig(level=logging.WARNING, format="launcher | %(levelname)s %(name)s %(message)s")
    sys.exit(run())


if __name__ == "__main__":
    main()
