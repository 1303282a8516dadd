"""The owner-scoped admin base: the admin holds a user to their own rows (DESIGN: ownership).

A superuser sees every row; any other staff user sees and changes only the rows they own, and
picks only their own rows in related fields. Each admin names the lookup from its model to the
owning user (`owner_path`).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import ForeignKey, Model, QuerySet
from django.forms import ModelChoiceField
from django.http import HttpRequest

# Related rows a user may pick, by model label: the lookup from that model to its owner.
OWNED_CHOICES = {
    "bots.Bot": "owner",
    "trading.ExchangeAccount": "owner",
    "bots.Cycle": "bot__owner",
    "trading.Position": "bot__owner",
    "trading.Order": "bot__owner",
}


class OwnerScopedAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Limits rows, related choices and object permissions to the user's own rows (unless superuser)."""

    owner_path = "bot__owner"  # lookup from this model to its owning user

    def _scoped(self, request: HttpRequest) -> bool:
        return not getattr(request.user, "is_superuser", False)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)
        if self._scoped(request):
            queryset = queryset.filter(**{self.owner_path: request.user})
        return queryset

    def _owns(self, request: HttpRequest, obj: Model | None) -> bool:
        if obj is None or not self._scoped(request):
            return True
        return self.get_queryset(request).filter(pk=obj.pk).exists()

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_view_permission(request, obj) and self._owns(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_change_permission(request, obj) and self._owns(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_delete_permission(request, obj) and self._owns(request, obj)

    def formfield_for_foreignkey(
        self, db_field: ForeignKey[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> ModelChoiceField | None:  # type: ignore[type-arg]
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if field is None or field.queryset is None or not self._scoped(request):
            return field
        lookup = OWNED_CHOICES.get(field.queryset.model._meta.label)
        if lookup is not None:
            field.queryset = field.queryset.filter(**{lookup: request.user})
        return field
