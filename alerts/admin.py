"""Admin for alerts, rules, channels and deliveries: staff see their own unless they are superusers."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest

from alerts.models import Alert, AlertRule, Channel, Delivery
from alerts.services import channel_delete, channel_problems, channel_test


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ["created_at", "severity", "kind", "event", "message", "bot", "owner", "in_app", "read"]
    list_filter = ["severity", "kind", "event", "in_app", "read", "created_at"]
    search_fields = ["message", "bot__name", "owner__username", "owner__email"]
    date_hierarchy = "created_at"
    list_select_related = ["bot", "owner"]
    # What happened is an audit record: only `read` is the user's to change.
    readonly_fields = ["owner", "bot", "kind", "event", "severity", "message", "payload", "in_app", "created_at"]
    fields = ["owner", "bot", "kind", "event", "severity", "message", "payload", "in_app", "read", "created_at"]
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


class _OwnedAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Staff see and edit their own rows; superusers everyone's."""

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(owner_id=request.user.pk)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if not change and not request.user.is_superuser:
            obj.owner = request.user
        super().save_model(request, obj, form, change)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            fields.append("owner")
        return fields


class ChannelForm(forms.ModelForm):  # type: ignore[type-arg]
    url = forms.URLField(required=False, max_length=500, assume_scheme="https", help_text="webhook: the URL to POST to")
    # Write-only, as in the API: never rendered back; left empty it keeps the key it has.
    secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="webhook: the HMAC-SHA256 key (at least 16 characters); leave empty to keep the current one",
    )

    class Meta:
        model = Channel
        fields = ["owner", "kind", "name", "enabled", "email", "url", "secret"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("secret") and self.instance.pk:
            data["secret"] = self.instance.secret
        probe = Channel(
            kind=data.get("kind", ""),
            email=data.get("email", ""),
            url=data.get("url", ""),
            secret=data.get("secret", ""),
        )
        for field, problem in channel_problems(channel=probe).items():
            if field in self.fields:
                self.add_error(field, problem)
        return data


@admin.register(Channel)
class ChannelAdmin(_OwnedAdmin):
    form = ChannelForm
    list_display = ["name", "kind", "target", "owner", "enabled", "verified_at", "consecutive_failures"]
    list_filter = ["kind", "enabled"]
    search_fields = ["name", "email", "url", "owner__username", "owner__email"]
    readonly_fields = ["telegram_chat_id", "telegram_user_id", "verified_at", "consecutive_failures", "disabled_reason",
                       "created_at", "updated_at"]  # fmt: skip
    actions = ["send_test"]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is not None and "kind" in form.base_fields:
            form.base_fields["kind"].disabled = True  # a channel's kind is what it is
        return form

    @admin.action(description="Send a test message")
    def send_test(self, request: HttpRequest, queryset: QuerySet[Channel]) -> None:
        for channel in queryset:
            channel_test(channel=channel)
        self.message_user(request, f"{queryset.count()} test message(s) queued.", messages.SUCCESS)

    def delete_model(self, request: HttpRequest, obj: Channel) -> None:
        try:
            channel_delete(channel=obj)
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)


class AlertRuleForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = AlertRule
        fields = ["owner", "name", "kind", "bot", "threshold", "window_minutes", "symbol", "severity",
                  "cooldown_seconds", "enabled", "channels"]  # fmt: skip

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        owner = data.get("owner") or getattr(self.instance, "owner", None)
        channels = data.get("channels")
        if owner is not None and channels is not None and any(c.owner_id != owner.pk for c in channels):
            self.add_error("channels", "only channels of the rule's owner")
        return data


@admin.register(AlertRule)
class AlertRuleAdmin(_OwnedAdmin):
    form = AlertRuleForm
    list_display = [
        "__str__",
        "kind",
        "bot",
        "threshold",
        "window_minutes",
        "severity",
        "cooldown_seconds",
        "enabled",
        "owner",
    ]
    list_filter = ["kind", "severity", "enabled"]
    search_fields = ["name", "owner__username", "bot__name"]
    filter_horizontal = ["channels"]
    list_select_related = ["bot", "owner"]

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "bot" and not request.user.is_superuser:
            from bots.models import Bot

            kwargs["queryset"] = Bot.objects.filter(owner_id=request.user.pk)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "channels" and not request.user.is_superuser:
            kwargs["queryset"] = Channel.objects.filter(owner_id=request.user.pk)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["created_at", "channel", "alert", "attempt", "status", "latency_ms", "error"]
    list_filter = ["status", "channel__kind", "permanent"]
    search_fields = ["error", "alert__message", "channel__name"]
    list_select_related = ["channel", "alert"]
    readonly_fields = [
        "alert",
        "channel",
        "attempt",
        "status",
        "permanent",
        "error",
        "latency_ms",
        "created_at",
        "finished_at",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Delivery]:
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(channel__owner_id=request.user.pk)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a record of what was attempted, never typed in

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
