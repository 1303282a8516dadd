"""Query filters shared by the list endpoints (`?bot=`, `?since=`, `?until=`...)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import django_filters
from django import forms
from django.db.models import QuerySet
from django_filters.fields import IsoDateTimeField, ModelChoiceField
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from bots.models import Bot, Cycle


class UTCDateTimeField(IsoDateTimeField):
    """ISO 8601, converted to UTC here: PostgreSQL refuses offsets beyond ±15:59, and a time the
    conversion pushes out of the calendar is the client's mistake, not a server error."""

    def to_python(self, value: Any) -> datetime | None:
        if isinstance(value, str) and not value.strip():
            # Given but empty (`?since=`): a mistake to say, not a filter to drop silently.
            raise forms.ValidationError("Enter a valid date/time.", code="invalid")
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(UTC)
        except (OverflowError, ValueError):
            raise forms.ValidationError("Enter a date and time within years 1 to 9999 (UTC).", code="invalid") from None


class StrictBooleanField(forms.NullBooleanField):
    """true/false (or 1/0); anything else is a 400, not a filter silently dropped (Django's
    select widget reads `?read=0` as "not given" and would answer with every row)."""

    widget = forms.TextInput

    def to_python(self, value: Any) -> bool | None:  # type: ignore[override]  # None: not given
        text = "" if value is None else str(value).strip().lower()
        if text == "":
            return None
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise forms.ValidationError("Enter true or false (or 1 or 0).", code="invalid")

    def validate(self, value: Any) -> None:
        pass  # None means "not filtered"


@extend_schema_field(OpenApiTypes.BOOL)  # the schema says boolean even where a `method` filters
class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


class UTCDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UTCDateTimeField


def own_bots(request: Any) -> QuerySet[Bot]:
    """The choices of a `?bot=` filter: only the requester's bots (another's id is a 400)."""
    if request is None or not request.user.is_authenticated:
        return Bot.objects.none()
    return Bot.objects.filter(owner_id=request.user.pk)


class StrictModelChoiceField(ModelChoiceField):
    """An id filter given but empty (`?bot=`) is a 400, like any other wrong id, not "all rows"."""

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            raise forms.ValidationError(self.error_messages["invalid_choice"], code="invalid_choice")
        return super().to_python(value)


class BotFilter(django_filters.ModelChoiceFilter):
    field_class = StrictModelChoiceField

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("queryset", own_bots)
        kwargs.setdefault("help_text", "one of your bots' id")
        super().__init__(**kwargs)


class CycleFilter(django_filters.FilterSet):
    bot = BotFilter()
    status = django_filters.ChoiceFilter(choices=Cycle.Status.choices)
    kind = django_filters.ChoiceFilter(choices=Cycle.Kind.choices)
    since = UTCDateTimeFilter(field_name="slot", lookup_expr="gte", help_text="slot at or after (ISO 8601)")
    until = UTCDateTimeFilter(field_name="slot", lookup_expr="lt", help_text="slot before (ISO 8601)")
    has_error = StrictBooleanFilter(method="filter_has_error", help_text="failed, or the output was rejected")

    class Meta:
        model = Cycle
        fields = ["bot", "status", "kind", "since", "until", "has_error"]

    def filter_has_error(self, queryset: QuerySet[Cycle], name: str, value: bool | None) -> QuerySet[Cycle]:
        if value is None:
            return queryset
        errored = queryset.exclude(error="") | queryset.exclude(decision_error="")
        return errored if value else queryset.filter(error="", decision_error="")
