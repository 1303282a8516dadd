"""Alerts API serializers: shape and validate input; alerts.services does the writing.

Rules and channels are owner-scoped: a rule can name only your bots and your channels (another
user's id is "does not exist", exactly like a missing one). A webhook's secret is write-only.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework import serializers

from alerts.models import Alert, AlertRule, Channel, Delivery
from alerts.rules import THRESHOLDS, rule_problems
from alerts.services import CHANNEL_FIELDS, MIN_SECRET_LENGTH, channel_problems
from bots.models import Bot


class AlertSerializer(serializers.ModelSerializer[Alert]):
    class Meta:
        model = Alert
        fields = ["id", "bot", "kind", "event", "severity", "message", "payload", "in_app", "read", "created_at"]
        read_only_fields = ["id", "bot", "kind", "event", "severity", "message", "payload", "in_app", "created_at"]


class MarkReadSerializer(serializers.Serializer[Any]):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        required=False,
        max_length=1000,
        help_text="the alerts to mark read; omit to mark every unread alert",
    )


class MarkedSerializer(serializers.Serializer[Any]):
    updated = serializers.IntegerField()


class _OwnedField(serializers.PrimaryKeyRelatedField):  # type: ignore[type-arg]
    """A related id among the requesting user's rows only."""

    def __init__(self, model: Any, **kwargs: Any) -> None:
        self.model = model
        super().__init__(**kwargs)

    def get_queryset(self) -> QuerySet[Any]:
        request = self.context.get("request")
        owner = request.user.pk if request is not None else None
        return self.model.objects.filter(owner_id=owner)


class ChannelSerializer(serializers.ModelSerializer[Channel]):
    """A place alerts go. Email: `email`; webhook: `url` and `secret` (at least 16 characters; the
    receiver checks the HMAC signature with it). Telegram chats are linked with a code
    (`telegram-link`), and the in-app channel exists for every account."""

    # Every kind in the schema (a list shows them all); only email and webhook are created here.
    kind = serializers.ChoiceField(choices=Channel.Kind.choices)
    secret = serializers.CharField(
        write_only=True, required=False, allow_blank=True, max_length=200, style={"input_type": "password"},
        help_text=f"webhook: the HMAC-SHA256 key, at least {MIN_SECRET_LENGTH} characters (write-only)",
    )  # fmt: skip
    target = serializers.CharField(read_only=True, help_text="where it delivers (never the secret)")
    has_secret = serializers.SerializerMethodField()

    class Meta:
        model = Channel
        fields = [
            "id", "kind", "name", "enabled", "email", "url", "secret", "has_secret", "target", "telegram_chat_id",
            "verified_at", "consecutive_failures", "disabled_reason", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = [
            "telegram_chat_id", "verified_at", "consecutive_failures", "disabled_reason", "created_at", "updated_at",
        ]  # fmt: skip

    def get_has_secret(self, channel: Channel) -> bool:
        return bool(channel.secret)

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        if self.instance is not None:
            # A channel's kind is what it is: read-only once created (any kind, in-app and Telegram too).
            fields["kind"] = serializers.CharField(read_only=True)
        return fields

    def validate_kind(self, value: str) -> str:
        if value not in (Channel.Kind.EMAIL, Channel.Kind.WEBHOOK):
            raise serializers.ValidationError(
                "only email and webhook channels are created here: the in-app channel exists for every "
                "account, and a Telegram chat is linked with a code (telegram-link)"
            )
        return value

    def validate_name(self, value: str) -> str:
        value = value.strip()
        if not value:
            raise serializers.ValidationError("This field may not be blank.")
        clash = Channel.objects.filter(owner_id=self.context["request"].user.pk, name=value)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError("you have a channel of this name already")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        kind = self.instance.kind if self.instance is not None else attrs.get("kind")
        allowed = set(CHANNEL_FIELDS.get(str(kind), ()))
        extra = {
            k: "not a setting of this kind of channel"
            for k in attrs
            if k != "kind" and k not in allowed and attrs[k] not in ("", None)
        }
        if extra:
            raise serializers.ValidationError(extra)
        probe = Channel(kind=str(kind))
        if self.instance is not None:
            for field in ("email", "url", "secret"):
                setattr(probe, field, getattr(self.instance, field))
        for key, value in attrs.items():
            if key != "secret" or value:
                setattr(probe, key, value)
        problems = channel_problems(channel=probe)
        if problems:
            raise serializers.ValidationError(problems)
        return attrs


class ChannelTestSerializer(serializers.Serializer[Any]):
    alert = serializers.IntegerField(help_text="the test alert; its deliveries: GET /api/alert-deliveries/?alert=<id>")
    detail = serializers.CharField()


class TelegramLinkSerializer(serializers.Serializer[Any]):
    code = serializers.CharField(help_text="send `/start CODE` to the bot; valid once, until expires_at")
    expires_at = serializers.DateTimeField()
    bot_username = serializers.CharField(allow_null=True, help_text="the bot's @name, once its process has started")
    link = serializers.CharField(allow_null=True, help_text="t.me link that sends the code when opened")


class AlertRuleSerializer(serializers.ModelSerializer[AlertRule]):
    """When to alert and where. `threshold` and `window_minutes` depend on the kind: see `units`."""

    bot = _OwnedField(Bot, required=False, allow_null=True, help_text="one of your bots; null: every bot")
    channels = _OwnedField(Channel, many=True, required=False, help_text="ids of your channels")
    unit = serializers.SerializerMethodField(help_text="what the threshold counts: %, quote, USD or x (a multiple)")

    class Meta:
        model = AlertRule
        fields = [
            "id", "name", "kind", "bot", "threshold", "unit", "window_minutes", "symbol", "severity",
            "cooldown_seconds", "enabled", "channels", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["created_at", "updated_at"]
        extra_kwargs = {"cooldown_seconds": {"max_value": 7 * 24 * 3600}}

    def get_unit(self, rule: AlertRule) -> str:
        spec = THRESHOLDS.get(rule.kind)
        return spec.unit if spec else ""

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        def current(field: str, default: Any) -> Any:
            if field in attrs:
                return attrs[field]
            return getattr(self.instance, field) if self.instance is not None else default

        problems = rule_problems(
            kind=current("kind", ""),
            threshold=current("threshold", None),
            window_minutes=current("window_minutes", None),
            symbol=current("symbol", "") or "",
        )
        if problems:
            raise serializers.ValidationError(problems)
        return attrs


class DeliverySerializer(serializers.ModelSerializer[Delivery]):
    """One attempt to send one alert to one channel."""

    alert_message = serializers.CharField(source="alert.message", read_only=True)
    event = serializers.CharField(source="alert.event", read_only=True)
    channel_name = serializers.CharField(source="channel.name", read_only=True)
    channel_kind = serializers.CharField(source="channel.kind", read_only=True)

    class Meta:
        model = Delivery
        fields = [
            "id", "alert", "alert_message", "event", "channel", "channel_name", "channel_kind", "attempt", "status",
            "permanent", "error", "latency_ms", "created_at", "finished_at",
        ]  # fmt: skip
        read_only_fields = fields
