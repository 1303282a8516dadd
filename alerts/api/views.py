"""Alerts API: list and filter your alerts, mark them read (one, several or all)."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from alerts.api.filters import AlertFilter
from alerts.api.serializers import AlertSerializer, MarkedSerializer, MarkReadSerializer
from alerts.models import Alert


class AlertViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin, viewsets.GenericViewSet[Alert]
):
    """Your alerts, newest first. Only `read` can be changed."""

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
