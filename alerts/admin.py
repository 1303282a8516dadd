"""Admin for alerts: staff see their own alerts unless they are superusers."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from alerts.models import Alert


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ["created_at", "severity", "kind", "message", "bot", "owner", "read"]
    list_filter = ["severity", "kind", "read", "created_at"]
    search_fields = ["message", "bot__name", "owner__username", "owner__email"]
    date_hierarchy = "created_at"
    list_select_related = ["bot", "owner"]
    # What happened is an audit record: only `read` is the user's to change.
    readonly_fields = ["owner", "bot", "kind", "severity", "message", "payload", "created_at"]
    fields = ["owner", "bot", "kind", "severity", "message", "payload", "read", "created_at"]
    actions = ["mark_read", "mark_unread"]
    ordering = ["-created_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Alert]:
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(owner_id=request.user.pk)

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Alerts are raised by the platform (alerts.services.alert_raise), never typed in.
        return False

    @admin.action(description="Mark selected alerts read")
    def mark_read(self, request: HttpRequest, queryset: QuerySet[Alert]) -> None:
        updated = queryset.filter(read=False).update(read=True)
        self.message_user(request, f"{updated} alert(s) marked read.", messages.SUCCESS)

    @admin.action(description="Mark selected alerts unread")
    def mark_unread(self, request: HttpRequest, queryset: QuerySet[Alert]) -> None:
        updated = queryset.filter(read=True).update(read=False)
        self.message_user(request, f"{updated} alert(s) marked unread.", messages.SUCCESS)
