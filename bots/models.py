from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from bots.providers import BASELINE, provider_choices
from bots.rules import (
    MAX_INTERVAL_SECONDS,
    MAX_STARTING_CAPITAL,
    MAX_TRADES_PER_DAY,
    MIN_INTERVAL_SECONDS,
    effective_max_leverage,
    quote_of,
    validate_positive,
    validate_symbols,
)
from trading.models import AppendOnlyModel, money_field
from trading.risk_types import RiskLimits


def pct_field(**kwargs: Any) -> models.DecimalField:
    return models.DecimalField(max_digits=7, decimal_places=3, **kwargs)


# The rules of a bot's configuration, single fields included, live in bots.rules.


def default_interval() -> int:
    return int(settings.BOT_DEFAULT_INTERVAL_SECONDS)


class Bot(models.Model):
    """A trading bot: a row, not a process. Workers run its cycles on its schedule."""

    class Status(models.TextChoices):
        INACTIVE = "inactive"
        ACTIVE = "active"
        PAUSED = "paused"
        STOPPED = "stopped"

    class Mode(models.TextChoices):
        PAPER = "paper"
        LIVE = "live"

    # The decision-maker providers, from their registry (bots.providers): `Bot.Provider.BASELINE`, ...
    Provider = models.TextChoices(  # type: ignore[misc,call-overload]
        "Provider", [(name.upper(), (name, label)) for name, label in provider_choices()]
    )

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="bots")
    name = models.CharField(max_length=100)
    provider = models.CharField(max_length=32, choices=Provider.choices, default=BASELINE)
    model = models.CharField(max_length=100, help_text="model name, or the baseline's name")
    exchange = models.CharField(max_length=32, default="coinbase", help_text="ccxt id of the market data exchange")
    symbols = models.JSONField(default=list, validators=[validate_symbols], help_text='ccxt symbols, e.g. ["BTC/USD"]')
    timeframe = models.CharField(max_length=8, default="1h")
    starting_capital = money_field(
        default=Decimal(10000),
        validators=[validate_positive, MaxValueValidator(MAX_STARTING_CAPITAL)],
        help_text="paper account funding, in the quote currency (at least 100 in a dollar quote)",
    )

    # Risk limits, enforced by trading.risk (code the model cannot override).
    max_position_pct = pct_field(
        default=Decimal(20),
        validators=[MinValueValidator(Decimal("0.1")), MaxValueValidator(Decimal(100))],
        help_text="largest margin of one position, % of equity",
    )
    max_leverage = models.DecimalField(
        max_digits=6,
        decimal_places=2,
        default=Decimal(3),
        validators=[MinValueValidator(Decimal(1)), MaxValueValidator(Decimal(125))],
    )
    max_exposure_pct = pct_field(
        default=Decimal(100),
        validators=[MinValueValidator(Decimal(1)), MaxValueValidator(Decimal(1000))],
        help_text="largest total notional of open positions, % of equity",
    )
    max_trades_per_day = models.PositiveIntegerField(
        default=20, validators=[MinValueValidator(1), MaxValueValidator(MAX_TRADES_PER_DAY)]
    )
    daily_loss_limit_pct = pct_field(
        default=Decimal(5), validators=[MinValueValidator(Decimal("0.1")), MaxValueValidator(Decimal(100))]
    )
    max_drawdown_pct = pct_field(
        default=Decimal(20), validators=[MinValueValidator(Decimal("0.1")), MaxValueValidator(Decimal(100))]
    )
    llm_daily_budget = money_field(
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0))],
        help_text="USD per UTC day; when reached the bot holds",
    )

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.INACTIVE)
    status_reason = models.CharField(max_length=300, blank=True)
    mode = models.CharField(max_length=5, choices=Mode.choices, default=Mode.PAPER)
    exchange_account = models.ForeignKey(
        "trading.ExchangeAccount", on_delete=models.PROTECT, null=True, blank=True, related_name="bots"
    )
    live_confirmed = models.BooleanField(default=False, help_text="explicit confirmation to trade real money")
    interval_seconds = models.PositiveIntegerField(
        default=default_interval,
        validators=[MinValueValidator(MIN_INTERVAL_SECONDS), MaxValueValidator(MAX_INTERVAL_SECONDS)],
        help_text="seconds between two cycles",
    )
    # The dispatcher's query: WHERE status IN (...) AND next_cycle_at <= now (index below).
    next_cycle_at = models.DateTimeField(null=True, blank=True)
    # Lease: at most one cycle (or stop) of this bot runs at a time.
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)

    # The account (cash and the breakers' marks) is trading.TradingAccount (`bot.account`).
    consecutive_failures = models.PositiveIntegerField(default=0)

    # LLM totals (kept on the row so the leaderboard needs no aggregation over calls).
    llm_cost_total = money_field(default=Decimal(0), help_text="USD")
    # The same bill in the account's quote currency, at each call's recorded rate, and the part
    # of it (USD) no rate could convert (bots.llm_costs).
    llm_cost_quote_total = money_field(default=Decimal(0), help_text="in the quote currency")
    llm_cost_unconverted_total = money_field(default=Decimal(0), help_text="USD without a rate to convert it")
    llm_input_tokens_total = models.BigIntegerField(default=0)
    llm_output_tokens_total = models.BigIntegerField(default=0)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["status", "next_cycle_at"], name="bot_due")]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="uniq_bot_name"),
            # In the database too: one row outside it (a shell, a raw UPDATE) would otherwise make
            # the dispatcher's slot arithmetic fail for every bot.
            models.CheckConstraint(
                condition=models.Q(
                    interval_seconds__gte=MIN_INTERVAL_SECONDS, interval_seconds__lte=MAX_INTERVAL_SECONDS
                ),
                name="bot_interval_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def quote_currency(self) -> str:
        return quote_of(str(self.symbols[0])) if self.symbols else "USD"

    def risk_limits(self) -> RiskLimits:
        return RiskLimits(
            max_position_pct=self.max_position_pct,
            # Within the operator's cap too (a bot made before a lower BOT_MAX_LEVERAGE is clamped).
            max_leverage=effective_max_leverage(self.max_leverage),
            max_exposure_pct=self.max_exposure_pct,
            max_trades_per_day=self.max_trades_per_day,
            daily_loss_limit_pct=self.daily_loss_limit_pct,
            max_drawdown_pct=self.max_drawdown_pct,
        )


class Cycle(AppendOnlyModel):
    """One trading cycle of one bot for one slot: what the bot saw, decided and did, and why."""

    class Kind(models.TextChoices):
        TRADE = "trade"
        PROTECT = "protect", "Protect only (paused bot: exits, no decision)"
        CLOSE_OUT = "close_out", "Close-out (stopped bot: close every position)"

    class Status(models.TextChoices):
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"
        SKIPPED = "skipped"

    # PROTECT: a bot with cycles is never deleted with them (the books are append-only).
    bot = models.ForeignKey(Bot, on_delete=models.PROTECT, related_name="cycles")
    slot = models.DateTimeField(help_text="the scheduled time this cycle was claimed for")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.TRADE)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    attempts = models.PositiveIntegerField(default=1)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    market_time = models.DateTimeField(null=True, blank=True, help_text="open time of the last candle seen")

    snapshot = models.JSONField(null=True, blank=True)
    snapshot_hash = models.CharField(max_length=64, blank=True, db_index=True)
    prompt_version = models.CharField(max_length=32, blank=True)
    prompt = models.TextField(blank=True, help_text="the decision maker's full input")
    raw_output = models.TextField(blank=True, help_text="the decision maker's raw answer")
    decision = models.JSONField(null=True, blank=True, help_text="the validated decision")
    decision_error = models.TextField(blank=True, help_text="why the output was rejected, if it was")
    risk = models.JSONField(null=True, blank=True, help_text="per-action outcome with reasons")
    timings = models.JSONField(default=dict, blank=True, help_text="milliseconds per stage")
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    llm_cost = money_field(default=Decimal(0))
    llm_latency_ms = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-slot"]
        constraints = [
            # At most once per slot: a duplicate delivery or a second dispatcher loses here.
            models.UniqueConstraint(fields=["bot", "slot"], name="uniq_cycle_slot"),
        ]

    def __str__(self) -> str:
        return f"{self.bot_id} @ {self.slot:%Y-%m-%d %H:%M:%S} ({self.status})"


class LLMCall(AppendOnlyModel):
    """One request to an LLM API (a decision or a repair attempt), with its usage and cost."""

    class Purpose(models.TextChoices):
        DECIDE = "decide"
        REPAIR = "repair"
        CHECK = "check"

    class Status(models.TextChoices):
        OK = "ok"
        ERROR = "error"

    cycle = models.ForeignKey(Cycle, on_delete=models.PROTECT, null=True, blank=True, related_name="llm_calls")
    bot = models.ForeignKey(Bot, on_delete=models.PROTECT, null=True, blank=True, related_name="llm_calls")
    provider = models.CharField(max_length=32)
    model = models.CharField(max_length=100)
    purpose = models.CharField(max_length=8, choices=Purpose.choices, default=Purpose.DECIDE)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OK)
    attempts = models.PositiveIntegerField(default=1, help_text="HTTP attempts including retries")
    latency_ms = models.PositiveIntegerField(default=0)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cost = money_field(default=Decimal(0), help_text="USD")
    # The cost in the bot's quote currency at the rate of the call's market time (marketdata.rates);
    # null when no rate existed (a zero cost needs none).
    quote_currency = models.CharField(max_length=16, blank=True)
    usd_rate = models.DecimalField(
        max_digits=30, decimal_places=12, null=True, blank=True, help_text="quote currency units per USD"
    )
    cost_quote = money_field(null=True, blank=True, help_text="the cost in the quote currency")
    rate_source = models.CharField(max_length=200, blank=True, help_text="the candle the rate came from")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        # Daily budget: SUM(cost) WHERE bot_id=? AND created_at >= start of the UTC day.
        indexes = [models.Index(fields=["bot", "created_at"], name="llmcall_bot_created")]

    def __str__(self) -> str:
        return f"{self.provider}/{self.model} {self.purpose} {self.status}"
