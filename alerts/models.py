from __future__ import annotations

from django.conf import settings
from django.db import models


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

    class Meta:
        ordering = ["-created_at"]
        # The dashboard's unread badge: WHERE owner_id=? AND read=false.
        indexes = [models.Index(fields=["owner", "read", "-created_at"], name="alert_owner_unread")]

    def __str__(self) -> str:
        return f"[{self.severity}] {self.message}"
