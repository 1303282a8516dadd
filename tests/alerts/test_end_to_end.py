"""A drawdown breaker in a trading cycle reaches email, a webhook and Telegram through a real
alerts worker (a `celery worker -Q alerts` process) and the three local protocol servers."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from alerts.models import Alert, AlertRule, Channel, Delivery
from bots.cycle import run_cycle
from tests.alerts.conftest import SECRET, TOKEN, channel
from tests.alerts.servers import SmtpServer, TelegramServer, WebhookReceiver
from tests.factories import SLOT, BotFactory, fund_bot
from tests.realtime.servers import BASE_DIR
from tests.realtime.servers import test_database_url as database_url

pytestmark = pytest.mark.django_db(transaction=True)


def _purge_alerts_queue() -> None:
    import redis

    redis.Redis.from_url(django_settings.CELERY_BROKER_URL).delete("alerts")


@pytest.fixture
def alerts_worker(smtp: SmtpServer, receiver: WebhookReceiver, telegram: TelegramServer) -> Iterator[Path]:
    _purge_alerts_queue()
    log = Path(tempfile.mkdtemp(prefix="ta-alerts-")) / "worker.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url(),
        "REDIS_URL": django_settings.REDIS_URL,
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp.port),
        "EMAIL_USE_TLS": "false",
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE_URL": telegram.base_url,
        "ALERT_WEBHOOK_ALLOW_PRIVATE": "true",
        "PYTHONUNBUFFERED": "1",
    }
    argv = [sys.executable, "-m", "celery", "-A", "tradingagent", "worker", "--pool", "threads", "--concurrency", "4",
            "-Q", "alerts", "-n", f"alerts-e2e-{os.getpid()}@%h", "--without-gossip", "--without-mingle", "--loglevel", "INFO"]  # fmt: skip
    with log.open("wb") as out:
        worker = subprocess.Popen(argv, cwd=BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while b" ready." not in log.read_bytes():
            assert worker.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        yield log
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def test_a_drawdown_breaker_reaches_every_channel(alerts_worker, smtp, receiver, telegram, user) -> None:  # type: ignore[no-untyped-def]
    email = channel(user, "email", email="alice@example.com")
    hook = channel(user, "webhook", url=receiver.url, secret=SECRET)
    chat = channel(user, "telegram", telegram_chat_id=4242, telegram_user_id=11)
    AlertRule.objects.get(owner=user, kind="breaker_tripped").channels.add(email, hook, chat)
    bot = BotFactory(model="buy_and_hold", owner=user, name="deep-dive", start=True)
    run_cycle(bot_id=bot.pk, slot=SLOT)
    fund_bot(bot, peak_equity=Decimal(30000))
    run_cycle(bot_id=bot.pk, slot=SLOT + timedelta(seconds=180))

    alert = Alert.objects.get(bot=bot, event="breaker_tripped")
    assert alert.severity == "critical" and alert.in_app
    [mail] = smtp.wait_for(1, timeout=30)
    [request] = receiver.wait_for(1, timeout=30)
    telegram.wait_for(lambda sent: any(m.method == "sendMessage" for m in sent), timeout=30)
    assert "deep-dive paused by the drawdown breaker" in " ".join(mail.message["Subject"].split())
    assert request.signature_ok and request.json()["alert"]["id"] == alert.pk
    assert "deep-dive paused by the drawdown breaker" in telegram.messages_to(4242)[0].params["text"]
    deadline = time.monotonic() + 15
    while Delivery.objects.filter(alert=alert, status="sending").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    statuses = dict(Delivery.objects.filter(alert=alert).values_list("channel__kind", "status"))
    assert statuses == {"in_app": "sent", "email": "sent", "webhook": "sent", "telegram": "sent"}
    assert all(c.verified_at for c in Channel.objects.filter(pk__in=[email.pk, hook.pk, chat.pk]))
