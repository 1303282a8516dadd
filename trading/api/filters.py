"""Filters of the trading list endpoints: by bot, market, side, state and time."""

from __future__ import annotations

import django_filters
from django import forms
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema_field

from bots.api.filters import BotFilter, StrictBooleanFilter, UTCDateTimeFilter
from trading.models import ExchangeAccount, Fill, Order, Position
from trading.round_trips import CLOSE_REASONS_OF, EXIT_REASON_CHOICES

MAX_ID = 2**63 - 1


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": MAX_ID})
class IdFilter(django_filters.NumberFilter):
    """A row id: a positive integer (1.5 or text is a 400), documented as one."""

    field_class = forms.IntegerField

    def __init__(self, **kwargs: object) -> None:
        super().__init__(min_value=1, max_value=MAX_ID, **kwargs)  # type: ignore[arg-type]


class OrderFilter(django_filters.FilterSet):
    bot = BotFilter()
    symbol = django_filters.CharFilter(max_length=40)
    side = django_filters.ChoiceFilter(choices=Order.Side.choices)
    status = django_filters.ChoiceFilter(choices=Order.Status.choices)
    intent = django_filters.ChoiceFilter(choices=Order.Intent.choices)
    cycle = IdFilter(field_name="cycle_id")
    since = UTCDateTimeFilter(field_name="created_at", lookup_expr="gte", help_text="created at or after")
    until = UTCDateTimeFilter(field_name="created_at", lookup_expr="lt", help_text="created before")

    class Meta:
        model = Order
        fields = ["bot", "symbol", "side", "status", "intent", "cycle", "since", "until"]


class FillFilter(django_filters.FilterSet):
    bot = BotFilter()
    symbol = django_filters.CharFilter(max_length=40)
    side = django_filters.ChoiceFilter(choices=Order.Side.choices)
    order = django_filters.NumberFilter(field_name="order_id", min_value=1, max_value=2**63 - 1)
    since = UTCDateTimeFilter(field_name="created_at", lookup_expr="gte", help_text="filled at or after")
    until = UTCDateTimeFilter(field_name="created_at", lookup_expr="lt", help_text="filled before")

    class Meta:
        model = Fill
        fields = ["bot", "symbol", "side", "order", "since", "until"]


class PositionFilter(django_filters.FilterSet):
    bot = BotFilter()
    symbol = django_filters.CharFilter(max_length=40)
    side = django_filters.ChoiceFilter(choices=Position.Side.choices)
    status = django_filters.ChoiceFilter(
        choices=[("open", "open"), ("closed", "closed"), ("all", "all")],
        method="filter_status",
        empty_label=None,
        help_text="open (default), closed or all",
    )
    since = UTCDateTimeFilter(field_name="opened_at", lookup_expr="gte", help_text="opened at or after")
    until = UTCDateTimeFilter(field_name="opened_at", lookup_expr="lt", help_text="opened before")

    class Meta:
        model = Position
        fields = ["bot", "symbol", "side", "status", "since", "until"]

    @property
    def qs(self) -> QuerySet[Position]:
        queryset = super().qs
        # Open positions unless asked otherwise: "positions" means what the bot holds now.
        if not self.form.cleaned_data.get("status"):
            queryset = queryset.filter(status=Position.Status.OPEN)
        return queryset

    def filter_status(self, queryset: QuerySet[Position], name: str, value: str) -> QuerySet[Position]:
        if value in ("open", "closed"):
            return queryset.filter(status=value)
        return queryset


class ExchangeAccountFilter(django_filters.FilterSet):
    exchange = django_filters.CharFilter(max_length=32)
    testnet = StrictBooleanFilter()

    class Meta:
        model = ExchangeAccount
        fields = ["exchange", "testnet"]


class RoundTripFilter(django_filters.FilterSet):
    """Round trips (closed positions): by bot, market, side, exit reason and close time."""

    bot = BotFilter()
    symbol = django_filters.CharFilter(max_length=40)
    side = django_filters.ChoiceFilter(choices=Position.Side.choices)
    exit_reason = django_filters.ChoiceFilter(
        choices=[(reason, reason) for reason in EXIT_REASON_CHOICES], method="filter_exit_reason"
    )
    since = UTCDateTimeFilter(field_name="closed_at", lookup_expr="gte", help_text="closed at or after")
    until = UTCDateTimeFilter(field_name="closed_at", lookup_expr="lt", help_text="closed before")

    class Meta:
        model = Position
        fields = ["bot", "symbol", "side", "exit_reason", "since", "until"]

    def filter_exit_reason(self, queryset: QuerySet[Position], name: str, value: str) -> QuerySet[Position]:
        return queryset.filter(close_reason__in=CLOSE_REASONS_OF.get(value, []))
