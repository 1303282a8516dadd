from __future__ import annotations

import django_filters

from alerts.models import Alert
from bots.api.filters import BotFilter, StrictBooleanFilter, UTCDateTimeFilter


class AlertFilter(django_filters.FilterSet):
    bot = BotFilter()
    kind = django_filters.ChoiceFilter(choices=Alert.Kind.choices)
    severity = django_filters.ChoiceFilter(choices=Alert.Severity.choices)
    read = StrictBooleanFilter()
    since = UTCDateTimeFilter(field_name="created_at", lookup_expr="gte", help_text="raised at or after")
    until = UTCDateTimeFilter(field_name="created_at", lookup_expr="lt", help_text="raised before")

    class Meta:
        model = Alert
        fields = ["bot", "kind", "severity", "read", "since", "until"]
