"""Delay from a fill's commit to a WebSocket client receiving it: median and p99.

    DATABASE_URL=postgres://... REDIS_URL=redis://... SECRET_KEY=... FIELD_ENCRYPTION_KEY=... \
        .venv/bin/python bench/ws_latency.py [--fills 300] [--pause 0.02]

(or `DEBUG=true .venv/bin/python bench/ws_latency.py` on the embedded default: SQLite and the
embedded Redis). It migrates the database, creates a throwaway user and bot, starts the real ASGI
server (daphne) on a free port and connects a real WebSocket client to the bot's stream with an
API token. Then, one at a time, it writes an order and its fill in a transaction and publishes
the fill through `alerts.realtime` (the publisher the worker uses); the clock starts when the
transaction commits and stops when the client has the fill's event. Both ends are in this process,
so one monotonic clock measures both. At the end the user is deactivated and the bot stopped (the
books are append-only: its orders and fills stay, under a `bench-...` user).

The path measured is the production one: commit → on_commit → channel layer (Redis) → daphne →
consumer → socket → client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingagent.settings")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"daphne did not listen on {port} within {timeout} s")


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation: a value that was measured)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


class Receiver(threading.Thread):
    """A WebSocket client on its own event loop; stamps each fill event on arrival."""

    def __init__(self, *, url: str, origin: str, token: str) -> None:
        super().__init__(daemon=True)
        self.url, self.origin, self.token = url, origin, token
        self.received: dict[int, float] = {}
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._listen())
        except BaseException as exc:  # reported by the main thread
            self.error = exc
            self.ready.set()

    async def _listen(self) -> None:
        from websockets.asyncio.client import connect

        headers = {"Authorization": f"Bearer {self.token}"}
        async with connect(self.url, additional_headers=headers, origin=self.origin, open_timeout=10) as ws:  # type: ignore[arg-type]
            self.ready.set()
            while not self.stop.is_set():
                try:
                    raw = await asyncio.wait_for(ws.recv(), timeout=0.5)
                except TimeoutError:
                    continue
                stamp = time.perf_counter()
                event = json.loads(raw)
                if event.get("event") == "fill":
                    self.received[int(event["data"]["id"])] = stamp


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fills", type=int, default=300, help="fills to publish (default 300)")
    parser.add_argument("--pause", type=float, default=0.02, help="seconds between fills (default 0.02)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the last events")
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import transaction
    from rest_framework_simplejwt.tokens import RefreshToken

    from alerts import realtime
    from bots.models import Bot
    from bots.services import bot_create
    from trading.models import Fill, Order

    if getattr(settings, "EMBEDDED_REDIS", False):
        from tradingagent.embedded import ensure_embedded_redis

        ensure_embedded_redis(
            port=settings.EMBEDDED_REDIS_PORT, var_dir=settings.VAR_DIR, password=settings.EMBEDDED_REDIS_PASSWORD
        )
    call_command("migrate", verbosity=0)

    tag = uuid.uuid4().hex[:10]
    user = get_user_model().objects.create_user(username=f"bench-{tag}", email=f"bench-{tag}@example.invalid")
    bot = bot_create(
        owner=user,
        data={"name": f"ws-latency-{tag}", "model": "hold", "symbols": ["BTC/USD"], "starting_capital": Decimal(10000)},
    )
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "tradingagent.asgi:application"],
        cwd=BASE_DIR,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    receiver = Receiver(
        url=f"ws://127.0.0.1:{port}/ws/bots/{bot.pk}/",
        origin=f"http://127.0.0.1:{port}",
        token=str(RefreshToken.for_user(user).access_token),
    )
    committed: dict[int, float] = {}
    try:
        wait_listening(port, timeout=30)
        receiver.start()
        receiver.ready.wait(timeout=15)
        if receiver.error is not None:
            raise RuntimeError(f"the WebSocket client could not connect: {receiver.error}")
        for n in range(args.fills):
            with transaction.atomic():
                order = Order.objects.create(
                    bot=bot,
                    client_order_id=f"bench-{tag}-{n}",
                    symbol="BTC/USD",
                    side="buy",
                    intent="open",
                    quantity=Decimal("0.01"),
                    status="filled",
                    filled_quantity=Decimal("0.01"),
                    average_price=Decimal(50000),
                )
                fill = Fill.objects.create(
                    order=order, bot=bot, symbol="BTC/USD", side="buy", quantity=Decimal("0.01"), price=Decimal(50000)
                )
                fill_id = fill.pk
                # Registered before the publish, so it runs first: the moment of the commit.
                transaction.on_commit(lambda fill_id=fill_id: committed.__setitem__(fill_id, time.perf_counter()))
                realtime.publish_fill(fill, owner_id=user.pk)
            time.sleep(args.pause)
        deadline = time.monotonic() + args.timeout
        while len(receiver.received) < len(committed) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        receiver.stop.set()
        receiver.join(timeout=5)
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        # The books are append-only (its orders and fills stay): the throwaway user is deactivated
        # and its bot stopped, so neither can log in nor run.
        Bot.objects.filter(pk=bot.pk).update(status=Bot.Status.STOPPED, status_reason="ws_latency bench")
        get_user_model().objects.filter(pk=user.pk).update(is_active=False)

    delays = [(receiver.received[i] - committed[i]) * 1000 for i in committed if i in receiver.received]
    lost = len(committed) - len(delays)
    if not delays:
        print("no fill event arrived", file=sys.stderr)
        return 1
    print(f"fills published        {len(committed)}")
    print(f"events received        {len(delays)}" + (f" ({lost} lost)" if lost else ""))
    print(f"commit -> client median {statistics.median(delays):8.2f} ms")
    print(f"commit -> client p99    {percentile(delays, 99):8.2f} ms")
    print(f"commit -> client mean   {statistics.fmean(delays):8.2f} ms")
    print(f"commit -> client max    {max(delays):8.2f} ms")
    return 0 if not lost else 1


if __name__ == "__main__":
    raise SystemExit(main())
