"""A drawdown alert from the breaker to email, a webhook and Telegram: the delay to each.

    DATABASE_URL=postgres://... REDIS_URL=redis://... SECRET_KEY=... FIELD_ENCRYPTION_KEY=... \
        .venv/bin/python bench/alert_delivery.py [--bots 5]

(or `DEBUG=true .venv/bin/python bench/alert_delivery.py` on the embedded default). It starts the
tests' local servers, each speaking its real protocol: an SMTP server (aiosmtpd), a webhook
receiver that verifies the HMAC signature, and a Telegram Bot API server; points the settings at
them (EMAIL_HOST/PORT, TELEGRAM_API_BASE_URL, ALERT_WEBHOOK_ALLOW_PRIVATE for the 127.0.0.1
receiver), and starts a real alerts worker (`celery worker -Q alerts`, threads pool) on them.

Then for each of `--bots` throwaway bots: a buy-and-hold cycle opens a position, the bot's peak
equity is set far above its equity, and the next cycle's drawdown breaker pauses the bot and
raises the alert (alerts.services.alert_raise, in the cycle). The clock starts at the alert's
commit (its created_at) and stops when each server has the message (the servers run in this
process: one clock). It prints the delay per channel (median and max) and the worker's own send
latency per attempt (Delivery.latency_ms). The user and all of theirs is deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingagent.settings")

SECRET = "bench-webhook-secret-0123456789"
TOKEN = "424242:BENCH-token-abcdefghijklmnopqrstuv"
SLOT = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bots", type=int, default=5, help="breakers to trip (one alert each)")
    args = parser.parse_args()

    from tests.alerts.servers import smtp_server, telegram_server, webhook_receiver

    with smtp_server() as smtp, webhook_receiver(SECRET) as receiver, telegram_server(TOKEN) as telegram:
        os.environ.update(
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=str(smtp.port),
            EMAIL_USE_TLS="false",
            EMAIL_USE_SSL="false",
            TELEGRAM_BOT_TOKEN=TOKEN,
            TELEGRAM_API_BASE_URL=telegram.base_url,
            ALERT_WEBHOOK_ALLOW_PRIVATE="true",
            # Nobody runs the evaluator here; only the breaker's alert is measured.
            PYTHONUNBUFFERED="1",
        )
        import django

        django.setup()
        from django.contrib.auth import get_user_model
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        worker_log = Path(f"/tmp/alert-bench-worker-{os.getpid()}.log")
        with worker_log.open("wb") as out:
            worker = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "tradingagent", "worker", "--pool", "threads", "--concurrency", "4",
                 "-Q", "alerts", "-n", f"alert-bench-{os.getpid()}@%h", "--without-gossip", "--without-mingle",
                 "--loglevel", "INFO"],
                cwd=BASE_DIR, env=dict(os.environ), stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        tag = uuid.uuid4().hex[:8]
        user = get_user_model().objects.create_user(username=f"bench-{tag}", email=f"bench-{tag}@example.invalid")
        try:
            deadline = time.monotonic() + 60
            while b" ready." not in worker_log.read_bytes():
                if time.monotonic() > deadline or worker.poll() is not None:
                    print(worker_log.read_text()[-3000:])
                    return 1
                time.sleep(0.2)
            return measure(user=user, bots=args.bots, smtp=smtp, receiver=receiver, telegram=telegram)
        finally:
            worker.terminate()
            worker.wait(timeout=30)
            user.delete()


def measure(*, user, bots: int, smtp, receiver, telegram) -> int:  # type: ignore[no-untyped-def]
    from alerts.models import Alert, AlertRule, Channel, Delivery
    from bots.cycle import run_cycle
    from bots.services import bot_create, bot_start
    from trading.models import TradingAccount

    email = Channel.objects.create(owner=user, kind="email", name="email", email="trader@example.com")
    hook = Channel.objects.create(owner=user, kind="webhook", name="webhook", url=receiver.url, secret=SECRET)
    chat = Channel.objects.create(
        owner=user, kind="telegram", name="telegram", telegram_chat_id=555001, telegram_user_id=1
    )
    AlertRule.objects.get(owner=user, kind="breaker_tripped").channels.add(email, hook, chat)

    delays: dict[str, list[float]] = {"email": [], "webhook": [], "telegram": []}
    for n in range(bots):
        bot = bot_create(
            owner=user,
            data={"name": f"bench-{n}", "provider": "baseline", "model": "buy_and_hold", "exchange": "coinbase",
                  "symbols": ["BTC/USD"], "timeframe": "1h", "starting_capital": Decimal(10000), "interval_seconds": 180},
        )  # fmt: skip
        bot_start(bot=bot)
        run_cycle(bot_id=bot.pk, slot=SLOT)
        TradingAccount.objects.filter(pk=bot.pk).update(
            peak_equity=Decimal(30000)
        )  # a 66 % drawdown: the breaker trips
        mails, hooks, chats = len(smtp.mails), len(receiver.requests), len(telegram.messages_to(555001))
        run_cycle(bot_id=bot.pk, slot=SLOT + timedelta(seconds=180))
        alert = Alert.objects.filter(bot=bot, event="breaker_tripped").first()
        assert alert is not None, "the breaker did not raise its alert"
        raised = alert.created_at.timestamp()
        smtp.wait_for(mails + 1, timeout=30)
        receiver.wait_for(hooks + 1, timeout=30)
        telegram.wait_for(
            lambda sent, c=chats: len([m for m in sent if str(m.params.get("chat_id")) == "555001"]) > c, timeout=30
        )
        delays["email"].append(smtp.mails[-1].received_at - raised)
        delays["webhook"].append(receiver.requests[-1].received_at - raised)
        delays["telegram"].append(telegram.messages_to(555001)[-1].at - raised)
        assert receiver.requests[-1].signature_ok
        if n == 0:
            print(f"alert: [{alert.severity}] {alert.message}")
            print(f"  email subject: {smtp.mails[-1].message['Subject']}")
            print(f"  webhook: {receiver.requests[-1].headers['X-Tradingagent-Event']}, signature verified")
            print(f"  telegram: {telegram.messages_to(555001)[-1].params['text'].splitlines()[0]}")
    # The servers have the messages a moment before the worker records its answer: wait for that.
    deadline = time.monotonic() + 15
    while Delivery.objects.filter(channel__owner=user, status="sending").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    print(f"\n{bots} drawdown breaker alert(s), delay from the alert's commit to the message arriving:")
    for name, values in delays.items():
        ms = [v * 1000 for v in values]
        print(f"  {name:<9} median {statistics.median(ms):7.1f} ms   max {max(ms):7.1f} ms")
    latency = {
        kind: [
            d
            for d in Delivery.objects.filter(channel__owner=user, channel__kind=kind).values_list(
                "latency_ms", flat=True
            )
            if d is not None
        ]
        for kind in ("email", "webhook", "telegram", "in_app")
    }
    print("send latency per attempt (Delivery.latency_ms, in the worker):")
    for kind, sends in latency.items():
        print(f"  {kind:<9} median {statistics.median(sends):7.1f} ms   max {max(sends):7.1f} ms")
    rows = list(
        Delivery.objects.filter(channel__owner=user).values_list("channel__kind", "attempt", "status", "latency_ms")
    )
    print(f"delivery records: {len(rows)}, all sent: {all(r[2] == 'sent' for r in rows)}")
    if not all(r[2] == "sent" for r in rows):
        print(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
