from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db.models import QuerySet
from django.forms.fields import InvalidJSONInput
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse

from bots import rules
from bots.exceptions import BotConfigurationError, BotError
from bots.models import Bot, Cycle, LLMCall
from bots.services import (
    EDITABLE_FIELDS,
    bot_create,
    bot_delete,
    bot_pause,
    bot_start,
    bot_stop,
    bot_update,
)
from core.admin import OwnerScopedAdmin
from trading.models import ExchangeAccount
from trading.numbers import money


class SymbolsField(forms.JSONField):
    """The symbols list as JSON text; a document nested too deeply to decode is a form error."""

    def to_python(self, value: Any) -> Any:
        try:
            return super().to_python(value)
        except RecursionError:
            raise ValidationError('a list of symbols such as ["BTC/USD"]', code="invalid") from None

    def bound_data(self, data: Any, initial: Any) -> Any:
        try:
            return super().bound_data(data, initial)
        except RecursionError:
            return InvalidJSONInput(data)  # shown back as typed, like any unparsable input


class BotAdminForm(forms.ModelForm):
    """The admin's bot form holds a bot to the API's rules: known model and markets, a live bot's
    account and exchange, and what may not change once the bot has run or holds a position."""

    class Meta:
        model = Bot
        fields = ("owner", *EDITABLE_FIELDS)
        field_classes = {"symbols": SymbolsField}
        help_texts = {
            "llm_daily_budget": "USD per UTC day; when reached the bot holds. Blank on a new LLM bot: the "
            "platform's default budget.",
        }

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or self.cleaned_data
        editing = self.instance.pk is not None
        # Fields that failed their own validation are not checked again against the others.
        changed = {name for name in (self.changed_data if editing else self.fields) if name not in self.errors}

        def value(name: str) -> Any:
            if name in cleaned:
                return cleaned[name]
            try:
                return getattr(self.instance, name)
            except ObjectDoesNotExist:  # a relation not chosen yet
                return None

        # The rules are bots.rules'; the form only maps them onto its fields.
        values = {name: value(name) for name in (*EDITABLE_FIELDS, "owner")}
        current = Bot.objects.get(pk=self.instance.pk) if editing else None
        field_errors = rules.bot_config_errors(
            values=values, bot=None, changed=changed, owner=None if editing else values["owner"]
        )
        for field, problems in field_errors.items():
            if field not in self.errors:  # one message per field ("required" is not said twice)
                self.add_error(field if field in self.fields else None, problems)
        owner = value("owner")
        problem = rules.account_owner_problem(
            owner_id=owner.pk if owner is not None else None, account=value("exchange_account")
        )
        if problem and "exchange_account" in changed:
            self.add_error("exchange_account", problem)
        if current is not None and not self.errors:
            problem = rules.change_problem(bot=current, fields=self.changed_fields())
            if problem:
                raise ValidationError(problem + ".")
        return cleaned

    def changed_fields(self) -> dict[str, Any]:
        fields = {name: self.cleaned_data[name] for name in self.changed_data if name in EDITABLE_FIELDS}
        if "live_confirmed" in self.cleaned_data:
            # The box as submitted: ticked next to a switch to live, it is that switch's confirmation.
            fields["live_confirmed"] = self.cleaned_data["live_confirmed"]
        return fields


@admin.register(Bot)
class BotAdmin(OwnerScopedAdmin):
    owner_path = "owner"
    form = BotAdminForm
    list_display = (
        "name",
        "owner",
        "provider",
        "model",
        "status",
        "mode",
        "symbols",
        "timeframe",
        "cash",
        "llm_cost_total",
        "next_cycle_at",
    )
    list_filter = ("status", "mode", "provider", "exchange", "timeframe")
    search_fields = ("name", "model", "owner__username")
    readonly_fields = (
        "status",
        "status_reason",
        "next_cycle_at",
        "lease_owner",
        "lease_until",
        "cash",
        "peak_equity",
        "day_start_equity",
        "day_start_date",
        "consecutive_failures",
        "llm_cost_total",
        "llm_input_tokens_total",
        "llm_output_tokens_total",
        "created_at",
        "updated_at",
    )
    list_select_related = ("owner", "account")
    actions = ("start_bots", "pause_bots", "stop_bots")
    fieldsets = (
        (None, {"fields": ("owner", "name", "provider", "model", "mode", "exchange_account", "live_confirmed")}),
        ("Market", {"fields": ("exchange", "symbols", "timeframe", "interval_seconds", "starting_capital")}),
        (
            "Risk limits",
            {
                "fields": (
                    "max_position_pct",
                    "max_leverage",
                    "max_exposure_pct",
                    "max_trades_per_day",
                    "daily_loss_limit_pct",
                    "max_drawdown_pct",
                    "llm_daily_budget",
                )
            },
        ),
        ("State (read-only)", {"fields": readonly_fields}),
    )

    # The account's state is the trading account's (trading.TradingAccount), shown read-only here.
    @staticmethod
    def _account_value(obj: Bot, name: str) -> Any:
        try:
            return getattr(obj.account, name)
        except ObjectDoesNotExist:  # a bot being added has no account yet
            return None

    @admin.display(description="cash")
    def cash(self, obj: Bot) -> Any:
        return self._account_value(obj, "cash")

    @admin.display(description="peak equity")
    def peak_equity(self, obj: Bot) -> Any:
        return self._account_value(obj, "peak_equity")

    @admin.display(description="day start equity")
    def day_start_equity(self, obj: Bot) -> Any:
        return self._account_value(obj, "day_start_equity")

    @admin.display(description="day start date")
    def day_start_date(self, obj: Bot) -> Any:
        return self._account_value(obj, "day_start_date")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # A bot's owner is fixed once created: its account, history and streams are theirs.
        return (*self.readonly_fields, "owner") if obj is not None else self.readonly_fields

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        # A non-superuser picks only themself as owner and only their own exchange accounts.
        user_id = request.user.pk
        if not request.user.is_superuser and user_id is not None:
            if db_field.name == "owner":
                kwargs["queryset"] = get_user_model().objects.filter(pk=user_id)
            elif db_field.name == "exchange_account":
                kwargs["queryset"] = ExchangeAccount.objects.filter(owner_id=user_id)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: Bot, form: Any, change: bool) -> None:
        # Through the services, like the API: a new bot's paper account is funded with its
        # capital, and an edit writes only the changed fields (a fill or a breaker that moved the
        # row while the form was open is not overwritten).
        try:
            if change:
                bot_update(bot=Bot.objects.get(pk=obj.pk), data=form.changed_fields())
            else:
                data = {k: getattr(obj, k) for k in EDITABLE_FIELDS}
                if data["llm_daily_budget"] is None:
                    del data["llm_daily_budget"]  # blank: a new LLM bot gets the platform's default budget
                created = bot_create(owner=obj.owner, data=data)
                obj.pk = created.pk
                obj._state.adding = False
        except BotConfigurationError as exc:
            # The form checked the same rules; only a change made meanwhile (the bot started, a
            # position opened) can land here. Nothing was written.
            self.message_user(request, f"{obj.name} was not saved: {exc}", messages.ERROR)

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> Any:
        # As in the API: a bot that runs or holds positions is stopped first, not deleted with them.
        bot = self.get_object(request, object_id)
        problem = rules.delete_problem(bot=bot) if bot is not None else ""
        if bot is not None and problem:
            self.message_user(request, f"{bot.name} was not deleted: {problem}.", messages.ERROR)
            return HttpResponseRedirect(reverse("admin:bots_bot_change", args=[bot.pk]))
        return super().delete_view(request, object_id, extra_context)

    def delete_model(self, request: HttpRequest, obj: Bot) -> None:
        bot_delete(bot=obj)

    def get_actions(self, request: HttpRequest) -> Any:
        # Bots are deleted one at a time, each checked (delete_view); no bulk delete around it.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def _run(self, request: HttpRequest, queryset: QuerySet[Bot], command: Any, label: str) -> None:
        done = 0
        for bot in queryset:
            try:
                result = command(bot=bot)
            except BotError as exc:
                self.message_user(request, f"{bot.name}: {exc}", messages.ERROR)
                continue
            done += 1
            if label == "stopped":
                self.message_user(
                    request,
                    f"{bot.name}: closed {result.closed_positions} position(s), realized PnL after fees {money(result.realized_pnl, currency=bot.quote_currency)}",
                )
        if done:
            self.message_user(request, f"{done} bot(s) {label}.", messages.SUCCESS)

    @admin.action(description="Start selected bots")
    def start_bots(self, request: HttpRequest, queryset: QuerySet[Bot]) -> None:
        self._run(request, queryset, bot_start, "started")

    @admin.action(description="Pause selected bots")
    def pause_bots(self, request: HttpRequest, queryset: QuerySet[Bot]) -> None:
        self._run(request, queryset, bot_pause, "paused")

    @admin.action(description="Stop selected bots (close every position at market)")
    def stop_bots(self, request: HttpRequest, queryset: QuerySet[Bot]) -> None:
        self._run(request, queryset, bot_stop, "stopped")


class LLMCallInline(admin.TabularInline):
    model = LLMCall
    extra = 0
    can_delete = False
    fields = (
        "purpose",
        "status",
        "provider",
        "model",
        "attempts",
        "latency_ms",
        "input_tokens",
        "output_tokens",
        "cost",
        "error",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Cycle)
class CycleAdmin(OwnerScopedAdmin):
    list_display = (
        "bot",
        "slot",
        "kind",
        "status",
        "market_time",
        "input_tokens",
        "output_tokens",
        "llm_cost",
        "short_error",
    )
    # RelatedOnly: the bot filter lists only the bots of the (owner-scoped) cycles shown.
    list_filter = ("status", "kind", "bot__provider", ("bot", admin.RelatedOnlyFieldListFilter))
    search_fields = ("bot__name", "error", "decision_error", "snapshot_hash")
    date_hierarchy = "slot"
    list_select_related = ("bot",)
    inlines = (LLMCallInline,)
    readonly_fields = [f.name for f in Cycle._meta.fields]

    # The books: cycles and LLM calls are written by the cycle's services only, never changed or
    # deleted (the database refuses it too: bots.ledger_guards); no bulk action either.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="error")
    def short_error(self, obj: Cycle) -> str:
        return (obj.error or obj.decision_error)[:80]


@admin.register(LLMCall)
class LLMCallAdmin(OwnerScopedAdmin):
    list_display = (
        "created_at",
        "bot",
        "provider",
        "model",
        "purpose",
        "status",
        "latency_ms",
        "input_tokens",
        "output_tokens",
        "cost",
    )
    list_filter = ("provider", "model", "purpose", "status")
    search_fields = ("bot__name", "model", "error")
    readonly_fields = [f.name for f in LLMCall._meta.fields]
    list_select_related = ("bot",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
