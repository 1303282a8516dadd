"""Alerts: what happened (Alert), what a user wants to hear about (AlertRule), where it goes
(Channel), and what each attempt to get it there did (Delivery).

An event becomes an Alert only through `alerts.services.alert_raise`, which applies the owner's
rules (scope, thresholds, cooldown, de-duplication); each matching rule's channels get one
Delivery per attempt, sent by Celery tasks after commit.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from trading.fields import EncryptedTextField


class Alert(models.Model):
    class Kind(models.TextChoices):
        TRADE = "trade"
        PNL = "pnl"
        RISK = "risk"
        ERROR = "error"
        SYSTEM = "system"

    class Severity(models.TextChoices):
        INFO = "info"
        WARNING = "warning"
        CRITICAL = "critical"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alerts")
    bot = models.ForeignKey("bots.Bot", on_delete=models.CASCADE, null=True, blank=True, related_name="alerts")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.INFO)
    message = models.CharField(max_length=500)
    payload = models.JSONField(default=dict, blank=True)
    read = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # What happened, in the rules' vocabulary (alerts.rules.Event): breaker_tripped, drawdown, ...
    event = models.CharField(max_length=32, blank=True, default="")
    # The rules that fired for it (an event several rules match is one alert, sent once per channel).
    rules = models.ManyToManyField("alerts.AlertRule", blank=True, related_name="alerts")
    # One alert per underlying fact (a fill, a position, a breaker trip): a second report of the
    # same fact (a retried task, the cursor and the cycle both seeing an exit) finds this and stops.
    dedupe_key = models.CharField(max_length=200, blank=True, default="")
    # Shown in the dashboard's feed and counted as unread (a rule sent it to the in-app channel).
    in_app = models.BooleanField(default=True)

    class Meta:
        ordering = ["-created_at"]
        # The dashboard's unread badge: WHERE owner_id=? AND read=false.
        indexes = [models.Index(fields=["owner", "read", "-created_at"], name="alert_owner_unread")]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "dedupe_key"], condition=~Q(dedupe_key=""), name="uniq_alert_dedupe"
            )
        ]

    def __str__(self) -> str:
        return f"[{self.severity}] {self.message}"


class Channel(models.Model):
    """Somewhere a user's alerts go: the dashboard, an email address, a webhook, a Telegram chat."""

    class Kind(models.TextChoices):
        IN_APP = "in_app", "In-app (dashboard)"
        EMAIL = "email", "Email"
        WEBHOOK = "webhook", "Webhook"
        TELEGRAM = "telegram", "Telegram"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alert_channels")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    name = models.CharField(max_length=100)
    enabled = models.BooleanField(default=True)
    email = models.EmailField(blank=True, help_text="email: the address alerts are sent to")
    url = models.URLField(max_length=500, blank=True, help_text="webhook: the https:// (or http://) URL to POST to")
    # The webhook's HMAC key: encrypted at rest, write-only in the API, never logged.
    secret = EncryptedTextField(blank=True)
    telegram_chat_id = models.BigIntegerField(null=True, blank=True, editable=False)
    # The Telegram user who linked the chat: in a group chat only they may give commands.
    telegram_user_id = models.BigIntegerField(null=True, blank=True, editable=False)
    verified_at = models.DateTimeField(
        null=True, blank=True, help_text="last time a message reached it (a test or an alert)"
    )
    consecutive_failures = models.PositiveIntegerField(default=0, help_text="permanent failures in a row")
    disabled_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["kind", "name"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="uniq_channel_name"),
            # The dashboard is one place: one in-app channel per user.
            models.UniqueConstraint(fields=["owner"], condition=Q(kind="in_app"), name="uniq_channel_in_app"),
            # A chat answers to one account: its commands act on that account's bots.
            models.UniqueConstraint(
                fields=["telegram_chat_id"], condition=Q(kind="telegram"), name="uniq_channel_telegram_chat"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    def __repr__(self) -> str:
        # Never let the webhook secret reach a log line or a traceback.
        return f"<Channel id={self.pk} kind={self.kind} name={self.name!r}>"

    @property
    def target(self) -> str:
        """Where it delivers, for people (the secret is never part of it)."""
        if self.kind == self.Kind.EMAIL:
            return self.email
        if self.kind == self.Kind.WEBHOOK:
            return self.url
        if self.kind == self.Kind.TELEGRAM:
            return f"chat {self.telegram_chat_id}"
        return "this dashboard"


class AlertRule(models.Model):
    """When to alert (an event or a condition), how loudly, how often, and where to."""

    class Kind(models.TextChoices):
        TRADE_FILLED = "trade_filled", "Trade filled"
        POSITION_CLOSED = "position_closed", "Position closed"
        PNL_MOVE = "pnl_move", "PnL move in a window"
        DRAWDOWN = "drawdown", "Drawdown"
        DAILY_LOSS = "daily_loss", "Daily loss"
        VOLATILITY = "volatility", "Volatility spike"
        FAILURE_RATE = "failure_rate", "Failures / invalid output rate"
        LLM_SPEND = "llm_spend", "LLM spend today"
        BREAKER_TRIPPED = "breaker_tripped", "Breaker tripped"
        BOT_STOPPED = "bot_stopped", "Bot stopped or paused"
        UNUSUAL_ACTIVITY = "unusual_activity", "Unusual activity"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alert_rules")
    bot = models.ForeignKey(
        "bots.Bot",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="alert_rules",
        help_text="empty: every bot",
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    name = models.CharField(max_length=100, blank=True)
    threshold = models.DecimalField(
        max_digits=20,
        decimal_places=6,
        null=True,
        blank=True,
        help_text="%, a notional, USD or a multiple, depending on the kind (see alerts.rules.THRESHOLDS)",
    )
    window_minutes = models.PositiveIntegerField(null=True, blank=True)
    symbol = models.CharField(max_length=40, blank=True, help_text="volatility: one market (empty: the bots' markets)")
    severity = models.CharField(max_length=16, choices=Alert.Severity.choices, default=Alert.Severity.WARNING)
    cooldown_seconds = models.PositiveIntegerField(
        default=3600, help_text="at most one alert per bot (or market) in this time"
    )
    enabled = models.BooleanField(default=True)
    channels = models.ManyToManyField(Channel, blank=True, related_name="rules")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["kind", "pk"]
        # alert_raise: WHERE owner_id=? AND enabled AND kind IN (...).
        indexes = [models.Index(fields=["owner", "kind"], name="alertrule_owner_kind")]

    def __str__(self) -> str:
        return self.name or self.get_kind_display()

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        from alerts.rules import rule_problems

        super().clean()
        problems = rule_problems(
            kind=self.kind, threshold=self.threshold, window_minutes=self.window_minutes, symbol=self.symbol
        )
        if self.bot_id is not None and self.owner_id is not None:
            from bots.models import Bot

            if not Bot.objects.filter(pk=self.bot_id, owner_id=self.owner_id).exists():
                problems["bot"] = "no such bot"
        if problems:
            raise ValidationError(problems)


class RuleState(models.Model):
    """A rule's memory for one subject (a bot, a market, the whole account): when it last fired
    and whether its condition is still holding (a condition alerts when it starts to hold)."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="states")
    subject = models.CharField(max_length=120)
    active = models.BooleanField(default=False)
    last_fired_at = models.DateTimeField(null=True, blank=True)
    last_value = models.DecimalField(max_digits=30, decimal_places=12, null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rule", "subject"], name="uniq_rule_state")]

    def __str__(self) -> str:
        return f"{self.rule_id}/{self.subject}"


class Delivery(models.Model):
    """One attempt to send one alert to one channel."""

    class Status(models.TextChoices):
        SENDING = "sending"
        SENT = "sent"
        RETRYING = "retrying", "Failed, will retry"
        FAILED = "failed"

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="deliveries")
    attempt = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SENDING)
    permanent = models.BooleanField(default=False, help_text="failed in a way a retry cannot fix")
    error = models.TextField(blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            # A redelivered task finds its attempt instead of sending it twice.
            models.UniqueConstraint(fields=["alert", "channel", "attempt"], name="uniq_delivery_attempt")
        ]
        # A channel's history (API, dashboard): WHERE channel_id=? ORDER BY created_at DESC.
        indexes = [models.Index(fields=["channel", "-created_at"], name="delivery_channel_created")]

    def __str__(self) -> str:
        return f"{self.alert_id} → {self.channel_id} #{self.attempt} {self.status}"


class TelegramLink(models.Model):
    """A one-time code that links a Telegram chat to its owner's account (only its hash is kept)."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="telegram_links")
    code_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    channel = models.ForeignKey(Channel, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    def __str__(self) -> str:
        return f"link of {self.owner_id} ({'used' if self.used_at else 'open'})"


class EvaluationCursor(models.Model):
    """How far the rule evaluator has read an append-only book (fills), by primary key."""

    name = models.CharField(max_length=32, primary_key=True)
    position = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name}@{self.position}"
