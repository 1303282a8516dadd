"""Admin for exchange accounts, orders, fills, positions and equity.

Ownership: a superuser sees every row; any other staff user sees and changes only their own
(accounts they own, trading rows of bots they own), including in the choices of related fields.

Orders, fills, positions, equity points and adjustments are the books: the audit trail of what
the bots did. They are read-only here, with no add, change, delete or bulk action (the trading
services write them; the database refuses deleting them or rewriting their history whatever the
path: trading.ledger_guards). A correction of an account's cash is a new adjustment with who and
why, added by a superuser through `trading.services.account_adjust`, never an edit.

Exchange keys are write-only: the form never renders a stored key, a blank input keeps it, and
"clear keys" removes all three.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from bots.rules import exchange_account_live_bots_problem
from bots.services import exchange_account_update
from core.admin import OwnerScopedAdmin
from trading.models import AccountAdjustment, EquitySnapshot, ExchangeAccount, Fill, Order, Position
from trading.services import account_adjust

if TYPE_CHECKING:
    from django.contrib.admin.options import _FieldGroups

SECRET_FIELDS = ("api_key", "api_secret", "passphrase")


class ReadOnlyRecordAdmin(OwnerScopedAdmin):
    """The books: the trading services write these rows; the admin only shows them.

    No add, change or delete permission, so no bulk action either (Django offers "delete
    selected" only with the delete permission)."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- Exchange accounts ---------------------------------------------------------------------------


class ExchangeAccountForm(forms.ModelForm):  # type: ignore[type-arg]
    """Keys are write-only: inputs start empty, a blank input keeps the stored key."""

    api_key = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only. Leave blank to keep the stored key.",
    )
    api_secret = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only. Leave blank to keep the stored secret.",
    )
    passphrase = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only; only some exchanges (e.g. OKX, KuCoin) use one. Leave blank to keep it.",
    )
    clear_keys = forms.BooleanField(required=False, help_text="Remove the stored key, secret and passphrase.")

    class Meta:
        model = ExchangeAccount
        fields = ["owner", "exchange", "label", "testnet", "api_key", "api_secret", "passphrase"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The ModelForm copied the decrypted keys into `initial`; drop them so no code path (a
        # widget with render_value, a template) can ever show them.
        for name in SECRET_FIELDS:
            self.initial.pop(name, None)

    def _keep_stored(self, name: str) -> Any:
        value: str = self.cleaned_data.get(name) or ""
        if not value and self.instance.pk:
            # As stored: an unreadable secret (trading.fields.UnreadableSecret) is kept as it is.
            return getattr(self.instance, name) or ""
        return value

    def clean_api_key(self) -> Any:
        return self._keep_stored("api_key")

    def clean_api_secret(self) -> Any:
        return self._keep_stored("api_secret")

    def clean_passphrase(self) -> Any:
        return self._keep_stored("passphrase")

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        # The (owner, label) constraint is not validated by Django when the owner is not a form
        # field (non-superusers); check it here so a duplicate is a form error, not a 500.
        owner = cleaned.get("owner") or (self.instance.owner if self.instance.owner_id else None)
        label = cleaned.get("label")
        if owner is not None and label:
            duplicate = ExchangeAccount.objects.filter(owner=owner, label=label).exclude(pk=self.instance.pk)
            if duplicate.exists():
                self.add_error("label", "You already have an exchange account with this label.")
        if self.instance.pk is not None and "exchange" in cleaned and "testnet" in cleaned:
            problem = exchange_account_live_bots_problem(
                account=self.instance, exchange=cleaned["exchange"], testnet=cleaned["testnet"]
            )
            if problem:
                self.add_error("exchange", problem)
        if cleaned.get("clear_keys"):
            for name in SECRET_FIELDS:
                cleaned[name] = ""
        return cleaned


@admin.register(ExchangeAccount)
class ExchangeAccountAdmin(OwnerScopedAdmin):
    form = ExchangeAccountForm
    owner_path = "owner"
    list_display = ("label", "exchange", "owner", "testnet", "keys_stored", "created_at", "updated_at")
    list_filter = ("exchange", "testnet")
    search_fields = ("label", "exchange", "owner__username", "owner__email")
    readonly_fields = ("keys_stored", "created_at", "updated_at")
    list_select_related = ("owner",)

    @admin.display(description="keys")
    def keys_stored(self, obj: ExchangeAccount) -> str:
        # Says whether keys are stored, never what they are.
        stored = [name.replace("api_", "") for name in SECRET_FIELDS if getattr(obj, name)]
        unreadable = [name.replace("api_", "") for name in obj.unreadable_secrets]
        if unreadable:
            return (
                f"UNREADABLE: {', '.join(unreadable)} (FIELD_ENCRYPTION_KEY lacks the key they were written with;"
                " restore it or enter the keys again)"
            )
        return ", ".join(stored) + " stored" if stored else "none"

    def get_fields(self, request: HttpRequest, obj: Any = None) -> _FieldGroups:
        fields: list[str | list[str] | tuple[str, ...]] = [
            "exchange",
            "label",
            "testnet",
            "api_key",
            "api_secret",
            "passphrase",
        ]
        if not self._scoped(request):
            fields.insert(0, "owner")
        if obj is not None:
            fields += ["clear_keys", "keys_stored", "created_at", "updated_at"]
        return fields

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form_class = super().get_form(request, obj, change=change, **kwargs)
        if not self._scoped(request):
            return form_class
        user = request.user

        class OwnedAccountForm(form_class):  # type: ignore[valid-type,misc]
            def __init__(self, *args: Any, **kw: Any) -> None:
                super().__init__(*args, **kw)
                # Known before validation, so the label check in `clean` sees the owner.
                if self.instance.owner_id is None:
                    self.instance.owner = user

        return OwnedAccountForm

    def save_model(self, request: HttpRequest, obj: ExchangeAccount, form: Any, change: bool) -> None:
        # A non-superuser's accounts are always their own (the owner field is not in their form).
        if self._scoped(request):
            obj.owner = request.user  # type: ignore[assignment]
        # Through the service, like the API: live bots of an account that leaves its testnet must
        # be confirmed again (the form already checked the rules against them).
        exchange_account_update(account=obj, data={})


# --- Orders, fills, positions, equity ------------------------------------------------------------


class FillInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Fill
    extra = 0
    can_delete = False
    fields = ("created_at", "side", "quantity", "price", "fee", "exchange_fill_id", "market_time")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Order)
class OrderAdmin(ReadOnlyRecordAdmin):
    list_display = (
        "client_order_id",
        "bot",
        "symbol",
        "side",
        "type",
        "intent",
        "status",
        "quantity",
        "filled_quantity",
        "average_price",
        "fee",
        "created_at",
    )
    list_filter = ("status", "intent", "side", "type", "reduce_only", "created_at")
    search_fields = ("client_order_id", "exchange_order_id", "symbol", "bot__name")
    date_hierarchy = "created_at"
    list_select_related = ("bot",)
    readonly_fields = [f.name for f in Order._meta.fields]
    inlines = [FillInline]


@admin.register(Fill)
class FillAdmin(ReadOnlyRecordAdmin):
    list_display = ("created_at", "bot", "symbol", "side", "quantity", "price", "fee", "order")
    list_filter = ("side", "created_at")
    search_fields = ("symbol", "bot__name", "order__client_order_id", "exchange_fill_id")
    date_hierarchy = "created_at"
    list_select_related = ("bot", "order")
    readonly_fields = [f.name for f in Fill._meta.fields]


@admin.register(Position)
class PositionAdmin(ReadOnlyRecordAdmin):
    list_display = (
        "symbol",
        "bot",
        "side",
        "status",
        "quantity",
        "entry_price",
        "leverage",
        "margin",
        "stop_loss",
        "take_profit",
        "realized_pnl",
        "fees",
        "close_reason",
        "opened_at",
        "closed_at",
    )
    list_filter = ("status", "side", "close_reason", "opened_at")
    search_fields = ("symbol", "bot__name", "thesis")
    date_hierarchy = "opened_at"
    list_select_related = ("bot",)
    readonly_fields = [f.name for f in Position._meta.fields]


@admin.register(EquitySnapshot)
class EquitySnapshotAdmin(ReadOnlyRecordAdmin):
    list_display = ("time", "bot", "equity", "cash", "unrealized_pnl", "realized_pnl", "fees", "llm_cost")
    list_filter = ("time",)
    search_fields = ("bot__name",)
    date_hierarchy = "time"
    list_select_related = ("bot",)
    readonly_fields = [f.name for f in EquitySnapshot._meta.fields]


# --- Adjustments: corrections as new entries -----------------------------------------------------


class AccountAdjustmentForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = AccountAdjustment
        fields = ["bot", "amount", "reason"]
        help_texts = {
            "amount": "Added to the bot's free cash, in its quote currency (negative takes cash out).",
            "reason": "Why the books are corrected: kept with the entry for good, with your name.",
        }

    def clean_reason(self) -> str:
        reason = str(self.cleaned_data.get("reason") or "").strip()
        if len(reason) < 10:
            raise ValidationError("Say why the books are corrected (at least 10 characters).")
        return reason


@admin.register(AccountAdjustment)
class AccountAdjustmentAdmin(OwnerScopedAdmin):
    """Corrections of an account's cash. A superuser adds one (through the service, which moves the
    cash in the same transaction); nobody changes or deletes one: a wrong correction is corrected
    by another."""

    form = AccountAdjustmentForm
    list_display = ("created_at", "bot", "signed_amount", "cash_after", "reason", "created_by")
    list_filter = ("created_at",)
    search_fields = ("bot__name", "reason", "created_by__username")
    date_hierarchy = "created_at"
    list_select_related = ("bot", "created_by")
    readonly_fields = ("created_at", "created_by", "cash_after")

    @admin.display(description="amount")
    def signed_amount(self, obj: AccountAdjustment) -> str:
        return f"{obj.amount:+f} {obj.bot.quote_currency}"

    def get_fields(self, request: HttpRequest, obj: Any = None) -> _FieldGroups:
        if obj is None:
            return ["bot", "amount", "reason"]
        return ["bot", "amount", "reason", "cash_after", "created_by", "created_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        return ("bot", "amount", "reason", "cash_after", "created_by", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Operators only: an owner adding cash to their own bot would flatter its results.
        return bool(getattr(request.user, "is_superuser", False))

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: AccountAdjustment, form: Any, change: bool) -> None:
        try:
            entry = account_adjust(
                bot_id=obj.bot_id, amount=obj.amount, reason=obj.reason, user_id=int(request.user.pk or 0)
            )
        except ValidationError as exc:
            # Checked again under the account's lock (the cash may have moved since the form).
            self.message_user(request, f"Not adjusted: {'; '.join(exc.messages)}", messages.ERROR)
            return
        obj.pk = entry.pk
        obj._state.adding = False
