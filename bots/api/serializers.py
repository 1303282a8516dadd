"""Bots API serializers: shape and validate input; the services do the writing.

A user sets only the bot's configuration (`bots.services.EDITABLE_FIELDS` minus `live_confirmed`,
which is given with the start command). Account state (cash, marks, totals, lease, schedule,
status) is read-only here, so no request can fund a bot or reschedule it.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.settings import api_settings

from bots import rules
from bots.models import Bot, Cycle, LLMCall
from bots.performance import Leaderboard, ModelRow, Performance
from bots.rules import (
    MAX_INTERVAL_SECONDS,
    MAX_STARTING_CAPITAL,
    MAX_SYMBOLS,
    MAX_TRADES_PER_DAY,
    MIN_INTERVAL_SECONDS,
    MIN_STARTING_CAPITAL,
)
from bots.services import EDITABLE_FIELDS
from trading.models import ExchangeAccount, Order
from trading.selectors import AccountMarks

logger = logging.getLogger(__name__)


# A Decimal the API returns as a fixed-point string (like every DecimalField), or null before the
# first price: documented as a string, not as a number that generated clients would parse.
DECIMAL_STRING: dict[str, object] = {
    "type": "string",
    "format": "decimal",
    "pattern": r"^-?\d+(\.\d+)?$",
    "nullable": True,
}


ACCOUNT_STATE_FIELDS = [
    "status",
    "status_reason",
    "live_confirmed",
    "next_cycle_at",
    "cash",
    "peak_equity",
    "day_start_equity",
    "consecutive_failures",
    "llm_cost_total",
    "llm_input_tokens_total",
    "llm_output_tokens_total",
    "created_at",
    "updated_at",
]
# What a user sets: the service's editable fields, but for `live_confirmed`, which only `start`
# with `confirm_live` sets.
CONFIG_FIELDS = [f for f in EDITABLE_FIELDS if f != "live_confirmed"]


MONEY_PLACES = Decimal("1e-12")  # the places of every money column and DecimalField here


def _money(value: Decimal | None) -> str | None:
    # Fixed-point like the DecimalFields beside it: "0.000000000000", never "0E-12".
    return None if value is None else f"{value.quantize(MONEY_PLACES):f}"


class BotSerializer(serializers.ModelSerializer[Bot]):
    """A bot's configuration (writable), its state (read-only) and its live equity and PnL."""

    symbols = serializers.ListField(
        child=serializers.CharField(max_length=40), min_length=1, max_length=MAX_SYMBOLS, help_text='e.g. ["BTC/USD"]'
    )
    starting_capital = serializers.DecimalField(
        max_digits=30,
        decimal_places=12,
        required=False,
        max_value=MAX_STARTING_CAPITAL,
        help_text=(
            f"paper account funding, in the quote currency: at least {MIN_STARTING_CAPITAL} in a dollar quote "
            "(USD, USDT, USDC, ...), positive in another (ETH/BTC trades in BTC)"
        ),
    )
    max_trades_per_day = serializers.IntegerField(required=False, min_value=1, max_value=MAX_TRADES_PER_DAY)
    interval_seconds = serializers.IntegerField(
        required=False,
        min_value=MIN_INTERVAL_SECONDS,
        max_value=MAX_INTERVAL_SECONDS,
        help_text="seconds between two cycles",
    )
    llm_daily_budget = serializers.DecimalField(
        max_digits=30,
        decimal_places=12,
        required=False,
        allow_null=True,
        min_value=Decimal(0),
        help_text=(
            "USD per UTC day; when reached the bot holds (exits still run). Left out when creating an LLM bot: "
            "the platform's default budget; null: no budget of its own (the platform's limit per user still applies)"
        ),
    )
    exchange_account = serializers.PrimaryKeyRelatedField(
        queryset=ExchangeAccount.objects.none(), required=False, allow_null=True
    )
    # The account's state, from the trading account (trading.TradingAccount) the bot trades with.
    cash = serializers.DecimalField(source="account.cash", max_digits=30, decimal_places=12, read_only=True)
    peak_equity = serializers.DecimalField(
        source="account.peak_equity", max_digits=30, decimal_places=12, read_only=True
    )
    day_start_equity = serializers.DecimalField(
        source="account.day_start_equity", max_digits=30, decimal_places=12, read_only=True
    )
    equity = serializers.SerializerMethodField()
    pnl = serializers.SerializerMethodField()
    unrealized_pnl = serializers.SerializerMethodField()
    open_positions = serializers.SerializerMethodField()

    class Meta:
        model = Bot
        fields = ["id", *CONFIG_FIELDS, *ACCOUNT_STATE_FIELDS, "equity", "pnl", "unrealized_pnl", "open_positions"]
        read_only_fields = ACCOUNT_STATE_FIELDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        field = self.fields["exchange_account"]
        if request is not None and isinstance(field, serializers.PrimaryKeyRelatedField):
            # Only the user's own accounts can be chosen: another user's id is "does not exist".
            field.queryset = ExchangeAccount.objects.filter(owner_id=request.user.pk)

    # --- live figures (from the accounts the view marked to market) ---

    def _account(self, bot: Bot) -> AccountMarks | None:
        accounts: dict[int, AccountMarks] = self.context.get("accounts", {})
        return accounts.get(bot.pk)

    @extend_schema_field(DECIMAL_STRING)
    def get_equity(self, bot: Bot) -> str | None:
        account = self._account(bot)
        return _money(account.equity) if account else None

    @extend_schema_field(DECIMAL_STRING)
    def get_pnl(self, bot: Bot) -> str | None:
        account = self._account(bot)
        return _money(account.equity - bot.starting_capital) if account else None

    @extend_schema_field(DECIMAL_STRING)
    def get_unrealized_pnl(self, bot: Bot) -> str | None:
        account = self._account(bot)
        return _money(account.unrealized_pnl) if account else None

    @extend_schema_field(OpenApiTypes.INT)
    def get_open_positions(self, bot: Bot) -> int | None:
        account = self._account(bot)
        return len(account.marks) if account else None

    # --- validation ---

    # The rules are bots.rules'; these only map them onto the request's fields.

    def validate_name(self, value: str) -> str:
        problem = rules.name_problem(
            owner_id=self.context["request"].user.pk,
            name=value,
            bot_id=self.instance.pk if isinstance(self.instance, Bot) else None,
        )
        if problem:
            raise serializers.ValidationError(problem)
        return value.strip()

    def validate_starting_capital(self, value: Decimal) -> Decimal:
        rules.validate_positive(value)  # the dollar minimum depends on the symbols: see validate()
        return value

    def validate_symbols(self, value: list[str]) -> list[str]:
        cleaned = [s.strip() for s in value]
        problem = rules.duplicate_symbols_problem(cleaned)
        if problem:
            raise serializers.ValidationError(problem)
        return cleaned

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # Field errors only here: what the bot's state forbids (bots.rules.change_problem) is the
        # service's to refuse, with the message the API has always given (400 from BotConfigurationError).
        bot = self.instance if isinstance(self.instance, Bot) else None
        changed = attrs.keys() if bot is not None else None
        errors = rules.bot_config_errors(
            values=attrs,
            bot=bot,
            changed=changed,
            check_state=False,
            owner=None if bot is not None else self.context["request"].user,
        )
        if rules.NON_FIELD in errors:  # DRF's name for errors of the whole request
            errors[api_settings.NON_FIELD_ERRORS_KEY] = errors.pop(rules.NON_FIELD)
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class BotStartSerializer(serializers.Serializer[Any]):
    confirm_live = serializers.BooleanField(
        default=False, help_text="required for a live bot: you accept that it trades real money"
    )


class StopResultSerializer(serializers.Serializer[Any]):
    bot = BotSerializer()
    closed_positions = serializers.IntegerField()
    realized_pnl = serializers.DecimalField(
        max_digits=30,
        decimal_places=12,
        help_text="of the positions this stop closed, after their entry and exit fees (a position's "
        "own realized_pnl is gross, with its fees beside it)",
    )
    canceled_orders = serializers.IntegerField()


class PeriodQuerySerializer(serializers.Serializer[Any]):
    period = serializers.ChoiceField(choices=["24h", "7d", "30d", "all"], default="all")


class EquityPointSerializer(serializers.Serializer[Any]):
    time = serializers.DateTimeField()
    market_time = serializers.DateTimeField(allow_null=True)
    equity = serializers.DecimalField(max_digits=30, decimal_places=12)


def _pct_field(help_text: str = "", **kwargs: Any) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=30, decimal_places=4, allow_null=True, help_text=help_text, **kwargs)


def _interval_field(help_text: str, **kwargs: Any) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.DecimalField(max_digits=30, decimal_places=4, allow_null=True),
        min_length=2,
        max_length=2,
        allow_null=True,
        help_text=help_text,
        **kwargs,
    )


CI_HELP = "95 % stationary-bootstrap interval [low, high]; null below 30 periods"


class PerformanceSerializer(serializers.Serializer[Performance]):
    """A bot over one window. Money is in `quote_currency`, except `llm_cost` (USD)."""

    bot_id = serializers.IntegerField()
    period = serializers.CharField()
    since = serializers.DateTimeField(allow_null=True, help_text="the window's start (null: the bot's start)")
    quote_currency = serializers.CharField()
    start_equity = serializers.DecimalField(max_digits=30, decimal_places=12)
    equity = serializers.DecimalField(max_digits=30, decimal_places=12, help_text="marked to the latest prices")
    return_pct = _pct_field("equity change over the window, net of fees (before the LLM bill)")
    total_pnl = serializers.DecimalField(max_digits=30, decimal_places=12, help_text="realized + unrealized")
    realized_pnl = serializers.DecimalField(
        max_digits=30, decimal_places=12, help_text="of positions closed in the period, gross"
    )
    unrealized_pnl = serializers.DecimalField(
        max_digits=30, decimal_places=12, help_text="of open positions at the latest price"
    )
    fees = serializers.DecimalField(max_digits=30, decimal_places=12)
    llm_cost = serializers.DecimalField(max_digits=30, decimal_places=12, help_text="USD")
    llm_cost_quote = serializers.DecimalField(
        max_digits=30,
        decimal_places=12,
        allow_null=True,
        help_text="the LLM bill in the quote currency at each call's recorded rate; null if a call had no rate",
    )
    net_pnl = serializers.DecimalField(
        max_digits=30,
        decimal_places=12,
        allow_null=True,
        help_text="equity change less the LLM bill, in the quote currency (fees are in the equity); "
        "null when the bill could not be converted",
    )
    net_return_pct = _pct_field("net PnL over the value at the window's start")
    net_return_ci = _interval_field(CI_HELP)
    sharpe = serializers.DecimalField(
        max_digits=20,
        decimal_places=4,
        allow_null=True,
        help_text="annualised from the market-time grid, risk-free rate 0; null below 30 periods",
    )
    sharpe_ci = _interval_field(CI_HELP)
    sortino = serializers.DecimalField(max_digits=20, decimal_places=4, allow_null=True)
    max_drawdown_pct = _pct_field("on the grid, of the net value")
    benchmark_return_pct = _pct_field("buy-and-hold of the bot's symbols (equal weights) over the same window")
    excess_return_vs_buy_and_hold_pct = _pct_field("net return − buy-and-hold return")
    excess_return_ci = _interval_field(CI_HELP + " (paired: the same periods of both)")
    verdict = serializers.CharField(help_text='e.g. "not distinguishable from buy-and-hold"')
    periods = serializers.IntegerField(help_text="grid periods in the window")
    grid = serializers.CharField(allow_null=True, help_text="the market-time grid's period, e.g. 1h")
    market_start = serializers.DateTimeField(allow_null=True, help_text="market time at the window's start")
    market_end = serializers.DateTimeField(allow_null=True, help_text="market time of the latest mark")
    win_rate = serializers.DecimalField(
        max_digits=7, decimal_places=2, allow_null=True, help_text="% of closed trades with a positive net PnL"
    )
    trades = serializers.IntegerField(help_text="positions closed in the period (round trips)")
    fills = serializers.IntegerField()
    cycles = serializers.IntegerField(help_text="cycles that asked the decision maker")
    invalid_outputs = serializers.IntegerField()
    invalid_output_rate = serializers.DecimalField(max_digits=12, decimal_places=4, allow_null=True)
    equity_series = EquityPointSerializer(many=True, help_text="the equity on the market-time grid")


class LeaderboardRowSerializer(serializers.Serializer[Any]):
    rank = serializers.IntegerField(allow_null=True, help_text="null: cannot be ranked (see unranked_reason)")
    bot_id = serializers.IntegerField(source="bot.pk")
    name = serializers.CharField(source="bot.name")
    provider = serializers.CharField(source="bot.provider")
    provider_name = serializers.CharField(source="bot.get_provider_display", help_text="e.g. Anthropic (Claude)")
    model = serializers.CharField(source="bot.model")
    status = serializers.CharField(source="bot.status")
    is_baseline = serializers.BooleanField()
    quote_currency = serializers.CharField(
        source="bot.quote_currency", help_text="the account's currency: equity and PnL are in it"
    )
    equity = serializers.DecimalField(source="performance.equity", max_digits=30, decimal_places=12)
    return_pct = _pct_field(source="performance.return_pct")
    net_return_pct = _pct_field(
        "after fees and the LLM bill: what the ranking uses", source="performance.net_return_pct"
    )
    net_return_ci = _interval_field(CI_HELP, source="performance.net_return_ci")
    net_pnl = serializers.DecimalField(source="performance.net_pnl", max_digits=30, decimal_places=12, allow_null=True)
    fees = serializers.DecimalField(source="performance.fees", max_digits=30, decimal_places=12)
    llm_cost = serializers.DecimalField(
        source="performance.llm_cost", max_digits=30, decimal_places=12, help_text="USD"
    )
    llm_cost_quote = serializers.DecimalField(
        source="performance.llm_cost_quote", max_digits=30, decimal_places=12, allow_null=True
    )
    sharpe = serializers.DecimalField(source="performance.sharpe", max_digits=20, decimal_places=4, allow_null=True)
    sharpe_ci = _interval_field(CI_HELP, source="performance.sharpe_ci")
    sortino = serializers.DecimalField(source="performance.sortino", max_digits=20, decimal_places=4, allow_null=True)
    max_drawdown_pct = _pct_field(source="performance.max_drawdown_pct")
    benchmark_return_pct = _pct_field(source="performance.benchmark_return_pct")
    excess_return_vs_buy_and_hold_pct = _pct_field(source="performance.excess_return_vs_buy_and_hold_pct")
    excess_return_ci = _interval_field(CI_HELP, source="performance.excess_return_ci")
    verdict = serializers.CharField(source="performance.verdict")
    periods = serializers.IntegerField(source="performance.periods")
    grid = serializers.CharField(source="performance.grid", allow_null=True)
    market_start = serializers.DateTimeField(source="performance.market_start", allow_null=True)
    market_end = serializers.DateTimeField(source="performance.market_end", allow_null=True)
    win_rate = serializers.DecimalField(source="performance.win_rate", max_digits=7, decimal_places=2, allow_null=True)
    trades = serializers.IntegerField(source="performance.trades")
    invalid_output_rate = serializers.DecimalField(
        source="performance.invalid_output_rate", max_digits=12, decimal_places=4, allow_null=True
    )
    unranked_reason = serializers.CharField(source="performance.unranked_reason")


class NotStartedSerializer(serializers.Serializer[Bot]):
    bot_id = serializers.IntegerField(source="pk")
    name = serializers.CharField()
    provider = serializers.CharField()
    provider_name = serializers.CharField(source="get_provider_display")
    model = serializers.CharField()
    status = serializers.CharField()


class ModelRowSerializer(serializers.Serializer[ModelRow]):
    rank = serializers.IntegerField(allow_null=True)
    provider = serializers.CharField()
    provider_name = serializers.CharField()
    model = serializers.CharField()
    is_baseline = serializers.BooleanField()
    bots = serializers.IntegerField(help_text="ranked bots averaged (equal weights)")
    net_return_pct = _pct_field()
    net_return_ci = _interval_field(CI_HELP + "; from the bots' averaged replicates")
    sharpe = serializers.DecimalField(max_digits=20, decimal_places=4, allow_null=True)
    sharpe_ci = _interval_field(CI_HELP)
    max_drawdown_pct = _pct_field()
    excess_return_vs_buy_and_hold_pct = _pct_field()
    excess_return_ci = _interval_field(CI_HELP)
    verdict = serializers.CharField()
    periods = serializers.IntegerField(help_text="the fewest periods of its bots")


class LeaderboardSerializer(serializers.Serializer[Leaderboard]):
    """Bots ranked by net return over one window; bots that never completed a trading cycle are
    listed apart, never ranked; per model as well as per bot."""

    period = serializers.CharField()
    window_start = serializers.DateTimeField(allow_null=True)
    window_end = serializers.DateTimeField()
    rows = LeaderboardRowSerializer(many=True)
    not_started = NotStartedSerializer(many=True)
    models = ModelRowSerializer(many=True)


class TradeStatsSerializer(serializers.Serializer[Any]):
    round_trips = serializers.IntegerField()
    win_rate = serializers.DecimalField(max_digits=7, decimal_places=2, allow_null=True)
    avg_holding_seconds = serializers.IntegerField(allow_null=True, help_text="market time")
    median_holding_seconds = serializers.IntegerField(allow_null=True, help_text="market time")
    long_pct = serializers.DecimalField(max_digits=7, decimal_places=2, allow_null=True)
    short_pct = serializers.DecimalField(max_digits=7, decimal_places=2, allow_null=True)
    avg_leverage = serializers.DecimalField(max_digits=8, decimal_places=2, allow_null=True)
    avg_confidence = serializers.DecimalField(max_digits=6, decimal_places=3, allow_null=True)
    biggest_win_pct = _pct_field("net PnL on margin")
    biggest_loss_pct = _pct_field("net PnL on margin")
    biggest_win = serializers.DecimalField(max_digits=30, decimal_places=12, allow_null=True, help_text="bots only")
    biggest_loss = serializers.DecimalField(max_digits=30, decimal_places=12, allow_null=True, help_text="bots only")
    fees_pct_of_gross = serializers.DecimalField(
        max_digits=30, decimal_places=2, allow_null=True, help_text="fees / |gross PnL| of the round trips"
    )


class AnalyticsSerializer(serializers.Serializer[Any]):
    trades = TradeStatsSerializer()
    decisions = serializers.IntegerField()
    invalid_outputs = serializers.IntegerField()
    invalid_output_rate = _pct_field()
    llm_cost = serializers.DecimalField(max_digits=30, decimal_places=12, help_text="USD")
    llm_cost_per_decision = serializers.DecimalField(max_digits=30, decimal_places=6, allow_null=True, help_text="USD")
    llm_cost_per_round_trip = serializers.DecimalField(
        max_digits=30, decimal_places=6, allow_null=True, help_text="USD"
    )
    quote_currency = serializers.CharField(allow_null=True, help_text="of the money figures (null: mixed)")


class BotAnalyticsSerializer(serializers.Serializer[Any]):
    bot_id = serializers.IntegerField(source="bot.pk")
    name = serializers.CharField(source="bot.name")
    provider = serializers.CharField(source="bot.provider")
    model = serializers.CharField(source="bot.model")
    analytics = AnalyticsSerializer()


class ModelAnalyticsSerializer(serializers.Serializer[Any]):
    provider = serializers.CharField()
    provider_name = serializers.CharField()
    model = serializers.CharField()
    bots = serializers.IntegerField()
    analytics = AnalyticsSerializer()


class AnalyticsResponseSerializer(serializers.Serializer[Any]):
    period = serializers.CharField()
    bots = BotAnalyticsSerializer(many=True)
    models = ModelAnalyticsSerializer(many=True)


class ArenaLineSerializer(serializers.Serializer[Any]):
    bot_id = serializers.IntegerField(source="bot.pk")
    name = serializers.CharField(source="bot.name")
    is_baseline = serializers.SerializerMethodField()
    points = serializers.SerializerMethodField(
        help_text="[market seconds since the window began, % return of the account value]"
    )

    def get_is_baseline(self, line: Any) -> bool:
        return bool(line.bot.provider == Bot.Provider.BASELINE)

    @extend_schema_field(serializers.ListField(child=serializers.ListField()))
    def get_points(self, line: Any) -> list[list[Any]]:
        return [[seconds, f"{value:f}"] for seconds, value in line.points]


class CandleSerializer(serializers.Serializer[Any]):
    time = serializers.DateTimeField(source="open_time")
    open = serializers.DecimalField(max_digits=30, decimal_places=12)
    high = serializers.DecimalField(max_digits=30, decimal_places=12)
    low = serializers.DecimalField(max_digits=30, decimal_places=12)
    close = serializers.DecimalField(max_digits=30, decimal_places=12)
    volume = serializers.DecimalField(max_digits=36, decimal_places=12)


class CandleQuerySerializer(serializers.Serializer[Any]):
    symbol = serializers.CharField(
        required=False, max_length=40, help_text="one of the bot's symbols (default: the first)"
    )
    limit = serializers.IntegerField(required=False, default=300, min_value=1, max_value=2000)


# --- Cycles ---------------------------------------------------------------------------------------


class CycleListSerializer(serializers.ModelSerializer[Cycle]):
    """One line of the cycle timeline: what the model concluded, without the heavy payloads."""

    market_summary = serializers.SerializerMethodField()
    actions = serializers.SerializerMethodField()
    has_error = serializers.SerializerMethodField()

    class Meta:
        model = Cycle
        fields = [
            "id",
            "bot",
            "slot",
            "kind",
            "status",
            "attempts",
            "started_at",
            "finished_at",
            "market_time",
            "market_summary",
            "actions",
            "decision_error",
            "error",
            "has_error",
            "input_tokens",
            "output_tokens",
            "llm_cost",
            "llm_latency_ms",
            "timings",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.STR)
    def get_market_summary(self, cycle: Cycle) -> str:
        return str((cycle.decision or {}).get("market_summary", ""))

    @extend_schema_field(
        {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "symbol": {"type": "string"},
                    "action": {"type": "string"},
                    "confidence": {"type": "number"},
                    "reasoning": {"type": "string"},
                    "size_pct": {"type": "string"},
                },
            },
        }
    )
    def get_actions(self, cycle: Cycle) -> list[dict[str, Any]]:
        actions = (cycle.decision or {}).get("actions", [])
        return [
            {
                "symbol": a.get("symbol"),
                "action": a.get("action"),
                "confidence": a.get("confidence"),
                "reasoning": a.get("reasoning", ""),
                "size_pct": a.get("size_pct"),
            }
            for a in actions
            if isinstance(a, dict)
        ]

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_has_error(self, cycle: Cycle) -> bool:
        return bool(cycle.error or cycle.decision_error)


class CycleOrderSerializer(serializers.ModelSerializer[Order]):
    class Meta:
        model = Order
        fields = [
            "id",
            "client_order_id",
            "symbol",
            "side",
            "type",
            "intent",
            "status",
            "quantity",
            "filled_quantity",
            "average_price",
            "price",
            "leverage",
            "fee",
            "error",
            "created_at",
        ]
        read_only_fields = fields


class LLMCallSerializer(serializers.ModelSerializer[LLMCall]):
    class Meta:
        model = LLMCall
        fields = [
            "id",
            "provider",
            "model",
            "purpose",
            "status",
            "attempts",
            "latency_ms",
            "input_tokens",
            "output_tokens",
            "cost",
            "error",
            "created_at",
        ]
        read_only_fields = fields


class CycleDetailSerializer(CycleListSerializer):
    """Everything a cycle recorded: what the model saw (snapshot, prompt), said, and what was done."""

    orders = CycleOrderSerializer(many=True, read_only=True)
    llm_calls = LLMCallSerializer(many=True, read_only=True)

    class Meta(CycleListSerializer.Meta):
        fields = [
            *CycleListSerializer.Meta.fields,
            "snapshot_hash",
            "snapshot",
            "prompt_version",
            "prompt",
            "raw_output",
            "decision",
            "risk",
            "orders",
            "llm_calls",
        ]
        read_only_fields = fields


class CatalogSerializer(serializers.Serializer[Any]):
    providers = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField(), allow_null=True),
        help_text="provider → known models (null: any model name)",
    )
    baselines = serializers.ListField(child=serializers.CharField())
    markets = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), help_text="exchange → symbols the feed offers"
    )
