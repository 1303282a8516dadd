"""Existing accounts get what a new one gets (alerts.services.defaults_create): the in-app channel
and the default rules. The defaults are copied here, as they were when this migration was
written: a migration must not change when the code's defaults change later."""

from decimal import Decimal

from django.conf import settings
from django.db import migrations
from django.utils import timezone

DEFAULT_RULES = [
    {"kind": "breaker_tripped", "severity": "critical", "cooldown_seconds": 0},
    {"kind": "bot_stopped", "severity": "warning", "cooldown_seconds": 0},
    {"kind": "position_closed", "severity": "info", "cooldown_seconds": 0},
    {"kind": "drawdown", "severity": "critical", "threshold": Decimal(10), "cooldown_seconds": 3600},
    {"kind": "volatility", "severity": "warning", "threshold": Decimal(5), "window_minutes": 60, "cooldown_seconds": 3600},
    {"kind": "failure_rate", "severity": "warning", "threshold": Decimal(50), "window_minutes": 60, "cooldown_seconds": 3600},
    {"kind": "unusual_activity", "severity": "warning", "threshold": Decimal(3), "window_minutes": 60, "cooldown_seconds": 3600},
]


def create_defaults(apps, schema_editor):
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    Channel = apps.get_model("alerts", "Channel")
    AlertRule = apps.get_model("alerts", "AlertRule")
    now = timezone.now()
    for user_id in User.objects.values_list("pk", flat=True):
        in_app, _ = Channel.objects.get_or_create(
            owner_id=user_id, kind="in_app", defaults={"name": "Dashboard", "verified_at": now}
        )
        if AlertRule.objects.filter(owner_id=user_id).exists():
            continue
        for spec in DEFAULT_RULES:
            rule = AlertRule.objects.create(owner_id=user_id, **spec)
            rule.channels.add(in_app)


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0003_rules_channels_deliveries"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [migrations.RunPython(create_defaults, migrations.RunPython.noop)]
