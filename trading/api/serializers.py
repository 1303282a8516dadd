"""Trading API serializers: positions (with live marks), orders, fills, exchange accounts."""

from __future__ import annotations

from typing import Any

import ccxt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from bots.selectors import PositionMark
from trading.models import ExchangeAccount, Fill, Order, Position
from trading.round_trips import EXIT_REASON_CHOICES
from tradingagent.api import unique_for_owner


class PositionSerializer(serializers.ModelSerializer[Position]):
    """A position; open ones carry the latest price and the unrealized PnL at that price."""

    price = serializers.SerializerMethodField(help_text="latest price the bot's market data has seen")
    unrealized_pnl = serializers.SerializerMethodField()

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

    @extend_schema_field(OpenApiTypes.DECIMAL)
    def get_price(self, position: Position) -> str | None:
        mark = self._mark(position)
        return None if mark is None or mark.price is None else str(mark.price)

    @extend_schema_field(OpenApiTypes.DECIMAL)
    def get_unrealized_pnl(self, position: Position) -> str | None:
        mark = self._mark(position)
        return None if mark is None or mark.unrealized_pnl is None else str(mark.unrealized_pnl)


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
    has_api_key = serializers.SerializerMethodField()
    has_api_secret = serializers.SerializerMethodField()
    has_passphrase = serializers.SerializerMethodField()

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

    def create(self, validated_data: dict[str, Any]) -> ExchangeAccount:
        account = ExchangeAccount(owner=self.context["request"].user, **validated_data)
        account.clean()  # the model's rules (a testnet the exchange has); ValidationError → 400
        account.save()
        return account

    def update(self, instance: ExchangeAccount, validated_data: dict[str, Any]) -> ExchangeAccount:
        for key, value in validated_data.items():
            setattr(instance, key, value)
        instance.clean()  # the model's rules (accounts under live bots); ValidationError → 400
        instance.save()
        return instance


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
