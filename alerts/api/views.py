"""Alerts API: your alerts (list, mark read), your alert rules and channels (CRUD, a channel's
test, linking a Telegram chat) and the delivery record of every attempt."""

from __future__ import annotations

import logging
from typing import Any

from django.core.cache import cache
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import Throttled
from rest_framework.request import Request
from rest_framework.response import Response

from alerts import services
from alerts.api.filters import AlertFilter, AlertRuleFilter, ChannelFilter, DeliveryFilter
from alerts.api.serializers import (
    AlertRuleSerializer,
    AlertSerializer,
    ChannelSerializer,
    ChannelTestSerializer,
    DeliverySerializer,
    MarkedSerializer,
    MarkReadSerializer,
    TelegramLinkSerializer,
)
from alerts.models import Alert, AlertRule, Channel, Delivery

logger = logging.getLogger(__name__)

# One test message per channel in this many seconds: the button cannot be used to flood an address.
TEST_INTERVAL_SECONDS = 10


def _owner(request: Request) -> int:
    owner_id = request.user.pk
    assert owner_id is not None  # IsAuthenticated
    return int(owner_id)


class AlertViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin, viewsets.GenericViewSet[Alert]
):
    """Your alerts, newest first (`in_app=true`: the dashboard's feed). Only `read` can be changed."""

    serializer_class = AlertSerializer
    filterset_class = AlertFilter

    def get_queryset(self) -> QuerySet[Alert]:
        # alert_owner_unread index: WHERE owner_id=? [AND read=?] ORDER BY created_at DESC.
        return Alert.objects.filter(owner_id=self.request.user.pk).order_by("-created_at", "-pk")

    @extend_schema(request=None, responses={200: AlertSerializer})
    @action(detail=True, methods=["post"])
    def read(self, request: Request, pk: str | None = None) -> Response:
        """Mark one alert read."""
        alert = self.get_object()
        if not alert.read:
            alert.read = True
            alert.save(update_fields=["read"])
        return Response(self.get_serializer(alert).data)

    @extend_schema(request=MarkReadSerializer, responses={200: MarkedSerializer})
    @action(detail=False, methods=["post"], url_path="read-all", filter_backends=[], pagination_class=None)
    def read_all(self, request: Request) -> Response:
        """Mark the given alerts (or every unread one) read; answers how many changed."""
        command = MarkReadSerializer(data=request.data)
        command.is_valid(raise_exception=True)
        alerts = self.get_queryset().filter(read=False)
        if "ids" in command.validated_data:
            alerts = alerts.filter(pk__in=command.validated_data["ids"])
        return Response({"updated": alerts.update(read=True)})


class AlertRuleViewSet(viewsets.ModelViewSet[AlertRule]):
    """Your alert rules: what to alert about, how loudly, how often and where."""

    serializer_class = AlertRuleSerializer
    filterset_class = AlertRuleFilter

    def get_queryset(self) -> QuerySet[AlertRule]:
        return (
            AlertRule.objects.filter(owner_id=self.request.user.pk).prefetch_related("channels").order_by("kind", "pk")
        )

    def perform_create(self, serializer: serializers.BaseSerializer[AlertRule]) -> None:
        data = dict(serializer.validated_data)
        channels = data.pop("channels", None)
        serializer.instance = services.rule_create(owner_id=_owner(self.request), data=data, channels=channels)

    def perform_update(self, serializer: serializers.BaseSerializer[AlertRule]) -> None:
        data = dict(serializer.validated_data)
        channels = data.pop("channels", None)
        assert serializer.instance is not None
        serializer.instance = services.rule_update(rule=serializer.instance, data=data, channels=channels)


class ChannelViewSet(viewsets.ModelViewSet[Channel]):
    """Where your alerts go: the dashboard (in-app), email addresses, webhooks, Telegram chats."""

    serializer_class = ChannelSerializer
    filterset_class = ChannelFilter

    def get_queryset(self) -> QuerySet[Channel]:
        return Channel.objects.filter(owner_id=self.request.user.pk).order_by("kind", "name", "pk")

    def perform_create(self, serializer: serializers.BaseSerializer[Channel]) -> None:
        data = dict(serializer.validated_data)
        kind = data.pop("kind")
        serializer.instance = services.channel_create(owner_id=_owner(self.request), kind=kind, data=data)

    def perform_update(self, serializer: serializers.BaseSerializer[Channel]) -> None:
        assert serializer.instance is not None
        serializer.instance = services.channel_update(channel=serializer.instance, data=dict(serializer.validated_data))

    def perform_destroy(self, instance: Channel) -> None:
        services.channel_delete(channel=instance)

    @extend_schema(request=None, responses={202: ChannelTestSerializer})
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: str | None = None) -> Response:
        """Send a test message now (to a disabled channel too); `verified_at` is set when it arrives."""
        channel = self.get_object()
        if not cache.add(f"alerts:test:{channel.pk}", 1, timeout=TEST_INTERVAL_SECONDS):
            raise Throttled(wait=TEST_INTERVAL_SECONDS, detail="one test message per channel every 10 seconds")
        alert = services.channel_test(channel=channel)
        return Response(
            {"alert": alert.pk, "detail": f"test message queued for {channel.name}"}, status=status.HTTP_202_ACCEPTED
        )

    @extend_schema(request=None, responses={201: TelegramLinkSerializer})
    @action(detail=False, methods=["post"], url_path="telegram-link", filter_backends=[], pagination_class=None)
    def telegram_link(self, request: Request) -> Response:
        """A one-time code linking a Telegram chat to your account: send `/start CODE` to the bot."""
        from alerts.telegram_bot import bot_username

        code, expires = services.telegram_link_create(owner_id=_owner(request))
        username = bot_username()
        body: dict[str, Any] = {
            "code": code,
            "expires_at": expires,
            "bot_username": username,
            "link": f"https://t.me/{username}?start={code}" if username else None,
        }
        return Response(TelegramLinkSerializer(body).data, status=status.HTTP_201_CREATED)


class DeliveryViewSet(viewsets.ReadOnlyModelViewSet[Delivery]):
    """Every attempt to deliver your alerts: channel, status, error, latency; newest first."""

    serializer_class = DeliverySerializer
    filterset_class = DeliveryFilter

    def get_queryset(self) -> QuerySet[Delivery]:
        return (
            Delivery.objects.filter(channel__owner_id=self.request.user.pk)
            .select_related("alert", "channel")
            .order_by("-created_at", "-pk")
        )
