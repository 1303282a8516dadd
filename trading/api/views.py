"""Trading API: positions, orders, fills (read-only, owner-scoped) and exchange accounts (CRUD)."""

from __future__ import annotations

import logging
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import viewsets
from rest_framework.generics import GenericAPIView
from rest_framework.renderers import BaseRenderer, BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import Conflict, JSONErrors
from trading import selectors
from trading.api.csv import CSVRenderer
from trading.api.filters import ExchangeAccountFilter, FillFilter, OrderFilter, PositionFilter, RoundTripFilter
from trading.api.serializers import (
    ExchangeAccountSerializer,
    FillSerializer,
    OrderSerializer,
    PositionSerializer,
    RoundTripSerializer,
)
from trading.models import ExchangeAccount, Fill, Order, Position
from trading.round_trips import as_row, closed_positions, round_trips

logger = logging.getLogger(__name__)


class PositionViewSet(viewsets.ReadOnlyModelViewSet[Position]):
    """Your bots' positions: open ones (the default) with the live unrealized PnL, or `?status=closed|all`."""

    serializer_class = PositionSerializer
    filterset_class = PositionFilter

    def get_queryset(self) -> QuerySet[Position]:
        return selectors.positions_of(user=self.request.user).order_by("-opened_at", "-pk")

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        context["marks"] = getattr(self, "_marks", {})
        return context

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        positions = list(page) if page is not None else list(queryset)
        self._marks = selectors.position_marks(positions=positions)
        data = self.get_serializer(positions, many=True).data
        return self.get_paginated_response(data) if page is not None else Response(data)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        position = self.get_object()
        self._marks = selectors.position_marks(positions=[position])
        return Response(self.get_serializer(position).data)


class OrderViewSet(viewsets.ReadOnlyModelViewSet[Order]):
    """Your bots' orders, newest first, with their fills."""

    serializer_class = OrderSerializer
    filterset_class = OrderFilter

    def get_queryset(self) -> QuerySet[Order]:
        return (
            selectors.orders_of(user=self.request.user).prefetch_related("fills__order").order_by("-created_at", "-pk")
        )


class FillViewSet(viewsets.ReadOnlyModelViewSet[Fill]):
    """Your bots' fills (the trades), newest first."""

    serializer_class = FillSerializer
    filterset_class = FillFilter

    def get_queryset(self) -> QuerySet[Fill]:
        return selectors.fills_of(user=self.request.user).select_related("order").order_by("-created_at", "-pk")


# JSON (and DRF's browsable page) or, with `?format=csv` (or `Accept: text/csv`), CSV.
ROUND_TRIP_RENDERERS: list[type[BaseRenderer]] = [JSONRenderer, BrowsableAPIRenderer, CSVRenderer]
CSV_PARAMETER = OpenApiParameter(
    "format", str, enum=["json", "csv"], description="csv: every matching round trip as CSV (not paginated)"
)


def round_trips_response(view: GenericAPIView[Any], positions: QuerySet[Position], *, filename: str) -> Response:
    """Round trips of `positions` (filtered by the view's filters): a page of JSON, or all as CSV."""
    queryset = closed_positions(view.filter_queryset(positions)).select_related("bot")
    if view.request.accepted_renderer.format == "csv":
        rows = RoundTripSerializer(_trip_rows(list(queryset)), many=True).data
        return Response(rows, headers={"Content-Disposition": f'attachment; filename="{filename}"'})
    page = view.paginate_queryset(queryset)
    return view.get_paginated_response(RoundTripSerializer(_trip_rows(list(page or [])), many=True).data)


def _trip_rows(positions: list[Position]) -> list[dict[str, Any]]:
    quotes = {p.bot_id: p.bot.quote_currency for p in positions}
    return [as_row(trip, quote_currency=quotes[trip.bot_id]) for trip in round_trips(positions)]


class RoundTripViewSet(JSONErrors, viewsets.GenericViewSet[Position]):
    """Your bots' round trips (completed trades), newest close first: entry and exit, holding
    time, gross and net PnL, exit reason, and the thesis they were opened with."""

    serializer_class = RoundTripSerializer
    filterset_class = RoundTripFilter
    renderer_classes = ROUND_TRIP_RENDERERS

    def get_queryset(self) -> QuerySet[Position]:
        return selectors.positions_of(user=self.request.user)

    @extend_schema(parameters=[CSV_PARAMETER], responses={200: RoundTripSerializer(many=True)})
    def list(self, request: Request) -> Response:
        return round_trips_response(self, self.get_queryset(), filename="round-trips.csv")


class ExchangeAccountViewSet(viewsets.ModelViewSet[ExchangeAccount]):
    """Your exchange accounts. Keys are write-only; omit a key on update to keep the stored one."""

    serializer_class = ExchangeAccountSerializer
    filterset_class = ExchangeAccountFilter

    def get_queryset(self) -> QuerySet[ExchangeAccount]:
        return selectors.exchange_accounts_of(user=self.request.user).order_by("label", "pk")

    def perform_destroy(self, instance: ExchangeAccount) -> None:
        if instance.bots.exists():
            # Bot.exchange_account is PROTECT: say which bots hold it instead of a bare conflict.
            names = ", ".join(instance.bots.values_list("name", flat=True)[:10])
            raise Conflict(f"The account is used by: {names}; change or delete those bots first.")
        logger.info("exchange account %s deleted by user %s", instance.pk, self.request.user.pk)
        instance.delete()
