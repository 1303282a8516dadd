"""Trading API serializers: positions (with live marks), orders, fills, exchange accounts."""

from __future__ import annotations

from typing import Any

import ccxt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from bots.services import exchange_account_update
from core.api import unique_for_owner
from trading.models import ExchangeAccount, Fill, Order, Position
from trading.round_trips import EXIT_REASON_CHOICES
from trading.selectors import PositionMark

# A Decimal the API returns as a fixed-point string (like every DecimalField), or null before the
# first price: documented as a string, not as a number that generated clients would parse.
DECIMAL_STRING: dict[str, object] = {
    "type": "string",
    "format": "decimal",
    "pattern": r"^-?\d+(\.\d+)?$",
    "nullable": True,
}


class PositionSerializer(serializers.ModelSerializer[Position]):
    """A position; open ones carry the latest price and the unrealized PnL at that price."""

    price = serializers.SerializerMethodField(help_text="latest price the bot's market data has seen")
    unrealized_pnl = serializers.SerializerMethodField()
    # Empty while the position is open: the schema says so (a blank choice).
    close_reason = serializers.ChoiceField(choices=Position.CloseReason.choices, allow_blank=True, read_only=True)

    class Meta:
        model = Position
        fields = [
            "id",
            "bot",
            "symbol",
            "side",
            "status",
            "quantity",
            "entry_price",
            "leverage",
            "margin",
            "stop_loss",
            "take_profit",
            "liquidation_price",
            "thesis",
            "invalidation",
            "confidence",
            "exit_price",
            "realized_pnl",
            "fees",
            "close_reason",
            "opened_at",
            "closed_at",
            "opened_cycle",
            "price",
            "unrealized_pnl",
        ]
        read_only_fields = fields

    def _mark(self, position: Position) -> PositionMark | None:
        marks: dict[int, PositionMark] = self.context.get("marks", {})
        return marks.get(position.pk)

    @extend_schema_field(DECIMAL_STRING)
    def get_price(self, position: Position) -> str | None:
        mark = self._mark(position)
        # Fixed-point ("0.00000012", not "1.2E-7"), as the schema's pattern says.
        return None if mark is None or mark.price is None else f"{mark.price:f}"

    @extend_schema_field(DECIMAL_STRING)
    def get_unrealized_pnl(self, position: Position) -> str | None:
        mark = self._mark(position)
        return None if mark is None or mark.unrealized_pnl is None else f"{mark.unrealized_pnl:f}"


class FillSerializer(serializers.ModelSerializer[Fill]):
    intent = serializers.CharField(source="order.intent", read_only=True)

    class Meta:
        model = Fill
        fields = [
            "id",
            "bot",
            "order",
            "symbol",
            "side",
            "intent",
            "quantity",
            "price",
            "fee",
            "exchange_fill_id",
            "market_time",
            "created_at",
        ]
        read_only_fields = fields


class OrderSerializer(serializers.ModelSerializer[Order]):
    fills = FillSerializer(many=True, read_only=True)

    class Meta:
        model = Order
        fields = [
            "id",
            "bot",
            "cycle",
            "position",
            "client_order_id",
            "exchange_order_id",
            "symbol",
            "side",
            "type",
            "intent",
            "reduce_only",
            "quantity",
            "price",
            "leverage",
            "status",
            "filled_quantity",
            "average_price",
            "fee",
            "error",
            "created_at",
            "submitted_at",
            "updated_at",
            "fills",
        ]
        read_only_fields = fields


class _ExchangeField(serializers.ChoiceField):
    """A ccxt exchange id, read case-insensitively ("Binance" is binance)."""

    def to_internal_value(self, data: Any) -> Any:
        return super().to_internal_value(data.strip().lower() if isinstance(data, str) else data)


class ExchangeAccountSerializer(serializers.ModelSerializer[ExchangeAccount]):
    """Exchange credentials. Keys are write-only: they are stored encrypted and never returned."""

    api_key = serializers.CharField(
        write_only=True, required=False, allow_blank=True, max_length=512, trim_whitespace=True
    )
    api_secret = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=1024,
        trim_whitespace=True,
        style={"input_type": "password"},
    )
    passphrase = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=256,
        trim_whitespace=True,
        style={"input_type": "password"},
    )
    # Exactly a ccxt exchange id (lower case), so the schema lists the valid ones.
    exchange = _ExchangeField(
        choices=sorted(ccxt.exchanges),
        help_text="ccxt exchange id, e.g. binance",
        error_messages={"invalid_choice": "{input!r} is not an exchange ccxt supports."},
    )
    has_api_key = serializers.SerializerMethodField()
    has_api_secret = serializers.SerializerMethodField()
    has_passphrase = serializers.SerializerMethodField()
    keys_readable = serializers.SerializerMethodField(
        help_text="false when stored keys cannot be decrypted (the server's encryption key changed): enter them again"
    )

    class Meta:
        model = ExchangeAccount
        fields = [
            "id",
            "exchange",
            "label",
            "testnet",
            "api_key",
            "api_secret",
            "passphrase",
            "has_api_key",
            "has_api_secret",
            "has_passphrase",
            "keys_readable",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_has_api_key(self, account: ExchangeAccount) -> bool:
        return bool(account.api_key)

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_has_api_secret(self, account: ExchangeAccount) -> bool:
        return bool(account.api_secret)

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_has_passphrase(self, account: ExchangeAccount) -> bool:
        return bool(account.passphrase)

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_keys_readable(self, account: ExchangeAccount) -> bool:
        return not account.unreadable_secrets

    def validate_exchange(self, value: str) -> str:
        value = value.strip().lower()
        if value not in ccxt.exchanges:
            raise serializers.ValidationError(f"{value!r} is not an exchange ccxt supports.")
        return value

    def validate_label(self, value: str) -> str:
        return unique_for_owner(
            serializer=self,
            model=ExchangeAccount,
            field="label",
            value=value,
            message="You already have an exchange account with this label.",
        )

    # Saved through the service: the model's rules and the live bots' (ValidationError → 400).
    def create(self, validated_data: dict[str, Any]) -> ExchangeAccount:
        account = ExchangeAccount(owner=self.context["request"].user)
        return exchange_account_update(account=account, data=validated_data)

    def update(self, instance: ExchangeAccount, validated_data: dict[str, Any]) -> ExchangeAccount:
        return exchange_account_update(account=instance, data=validated_data)


class RoundTripSerializer(serializers.Serializer[Any]):
    """A completed trade: the position's opening and closing fills. Money in `quote_currency`."""

    position_id = serializers.IntegerField()
    bot_id = serializers.IntegerField()
    symbol = serializers.CharField()
    side = serializers.CharField()
    quantity = serializers.DecimalField(max_digits=36, decimal_places=12, help_text="base units")
    leverage = serializers.DecimalField(max_digits=6, decimal_places=2)
    entry_price = serializers.DecimalField(max_digits=30, decimal_places=12)
    exit_price = serializers.DecimalField(max_digits=30, decimal_places=12)
    opened_at = serializers.DateTimeField()
    closed_at = serializers.DateTimeField()
    opened_market_time = serializers.DateTimeField(allow_null=True)
    closed_market_time = serializers.DateTimeField(allow_null=True)
    holding_seconds = serializers.IntegerField(help_text="wall clock")
    holding_market_seconds = serializers.IntegerField(
        allow_null=True, help_text="market time (null when unknown or when the replay looped)"
    )
    quote_currency = serializers.CharField()
    margin = serializers.DecimalField(max_digits=30, decimal_places=12)
    gross_pnl = serializers.DecimalField(max_digits=30, decimal_places=12)
    fees = serializers.DecimalField(max_digits=30, decimal_places=12, help_text="entry and exit")
    net_pnl = serializers.DecimalField(max_digits=30, decimal_places=12, help_text="gross − fees")
    return_pct = serializers.DecimalField(
        max_digits=30, decimal_places=4, allow_null=True, help_text="net PnL on the margin, %"
    )
    exit_reason = serializers.ChoiceField(choices=EXIT_REASON_CHOICES + ["unknown"])
    confidence = serializers.DecimalField(max_digits=4, decimal_places=3, allow_null=True)
    thesis = serializers.CharField(help_text="the reasoning it was opened with")
    invalidation = serializers.CharField(help_text="what would prove the thesis wrong")
    opened_cycle_id = serializers.IntegerField(allow_null=True)
