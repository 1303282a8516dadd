from __future__ import annotations

from typing import Any

from rest_framework import serializers

from alerts.models import Alert


class AlertSerializer(serializers.ModelSerializer[Alert]):
    class Meta:
        model = Alert
        fields = ["id", "bot", "kind", "severity", "message", "payload", "read", "created_at"]
        read_only_fields = ["id", "bot", "kind", "severity", "message", "payload", "created_at"]


class MarkReadSerializer(serializers.Serializer[Any]):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        required=False,
        max_length=1000,
        help_text="the alerts to mark read; omit to mark every unread alert",
    )


class MarkedSerializer(serializers.Serializer[Any]):
    updated = serializers.IntegerField()
