from __future__ import annotations

import django_filters

from alerts.models import Alert, AlertRule, Channel, Delivery
from bots.api.filters import BotFilter, StrictBooleanFilter, UTCDateTimeFilter


class AlertFilter(django_filters.FilterSet):
    bot = BotFilter()
    kind = django_filters.ChoiceFilter(choices=Alert.Kind.choices)
    severity = django_filters.ChoiceFilter(choices=Alert.Severity.choices)
    read = StrictBooleanFilter()
    in_app = StrictBooleanFilter(help_text="true: the dashboard's feed")
    since = UTCDateTimeFilter(field_name="created_at", lookup_expr="gte", help_text="raised at or after")
    until = UTCDateTimeFilter(field_name="created_at", lookup_expr="lt", help_text="raised before")

    class Meta:
        model = Alert
        fields = ["bot", "kind", "severity", "read", "in_app", "since", "until"]


class DeliveryFilter(django_filters.FilterSet):
    alert = django_filters.NumberFilter(field_name="alert_id")
    channel = django_filters.NumberFilter(field_name="channel_id")
    status = django_filters.ChoiceFilter(choices=Delivery.Status.choices)

    class Meta:
        model = Delivery
        fields = ["alert", "channel", "status"]


class AlertRuleFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=AlertRule.Kind.choices)
    bot = BotFilter()
    enabled = StrictBooleanFilter()

    class Meta:
        model = AlertRule
        fields = ["kind", "bot", "enabled"]


class ChannelFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=Channel.Kind.choices)
    enabled = StrictBooleanFilter()

    class Meta:
        model = Channel
        fields = ["kind", "enabled"]
