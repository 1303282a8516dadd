from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from core.errors import DomainConflict
from trading.fields import EncryptedTextField, is_unreadable


def price_field(**kwargs: Any) -> models.DecimalField:
    return models.DecimalField(max_digits=30, decimal_places=12, **kwargs)


def quantity_field(**kwargs: Any) -> models.DecimalField:
    return models.DecimalField(max_digits=36, decimal_places=12, **kwargs)


def money_field(**kwargs: Any) -> models.DecimalField:
    return models.DecimalField(max_digits=30, decimal_places=12, **kwargs)


class BooksAreAppendOnly(DomainConflict):
    """A book row (order, fill, position, equity point, cycle, LLM call, adjustment) was to be deleted."""


class AppendOnlyQuerySet(models.QuerySet):  # type: ignore[type-arg]
    """The books' rows are never deleted, in bulk either: said here in Python, refused by the
    database's triggers (core.append_only) whatever path a delete takes."""

    def delete(self) -> tuple[int, dict[str, int]]:
        raise BooksAreAppendOnly(f"{self.model._meta.verbose_name_plural} are books: they are never deleted")


class AppendOnlyModel(models.Model):
    """A row of the books: written by the services, never deleted (see AppendOnlyQuerySet)."""

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise BooksAreAppendOnly(f"{self._meta.verbose_name} {self.pk} is part of the books: it is never deleted")


class ExchangeAccount(models.Model):
    """Credentials for one account on one exchange; keys are encrypted at rest, never shown."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="exchange_accounts")
    exchange = models.CharField(max_length=32, help_text="ccxt exchange id, e.g. binance")
    label = models.CharField(max_length=100)
    api_key = EncryptedTextField(blank=True)
    api_secret = EncryptedTextField(blank=True)
    passphrase = EncryptedTextField(blank=True)
    testnet = models.BooleanField(default=True, help_text="use the exchange's sandbox/testnet")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["owner", "label"], name="uniq_account_label")]

    def __str__(self) -> str:
        return f"{self.label} ({self.exchange}{', testnet' if self.testnet else ''})"

    def __repr__(self) -> str:
        # Never let the decrypted keys reach a log line or a traceback.
        return f"<ExchangeAccount id={self.pk} exchange={self.exchange} label={self.label!r}>"

    def clean(self) -> None:
        super().clean()
        before = (
            None if self.pk is None else type(self).objects.filter(pk=self.pk).values("exchange", "testnet").first()
        )
        if before is not None and (before["exchange"], before["testnet"]) == (self.exchange, self.testnet):
            return  # where the account trades did not change: nothing below to check
        if self.testnet:
            from trading.brokers.ccxt_broker import testnet_problem

            problem = testnet_problem(self.exchange)
            if problem:
                raise ValidationError({"testnet": problem})
        # Whether live bots may follow the account elsewhere is the bots app's rule
        # (bots.services.exchange_account_update, through which the API and the admin save).

    @property
    def unreadable_secrets(self) -> list[str]:
        """The stored secrets no key of FIELD_ENCRYPTION_KEY decrypts (see trading.fields)."""
        return [name for name in ("api_key", "api_secret", "passphrase") if is_unreadable(getattr(self, name))]


class TradingAccount(models.Model):
    """A bot's trading account: its free cash and the marks its breakers measure from.

    Owned by the trading app: only trading services write it, and a fill locks this row (never the
    bot's), always after the order's row (lock order: order → account), so two writers of one
    account cannot deadlock. Cash is in the bot's quote currency. One per bot (same id).
    """

    bot = models.OneToOneField("bots.Bot", on_delete=models.CASCADE, primary_key=True, related_name="account")
    # The bot's owner, fixed for the account's life: who may see it and whose streams hear of it.
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    cash = money_field(default=Decimal(0), help_text="free cash (not locked as margin)")
    peak_equity = money_field(default=Decimal(0), help_text="highest equity marked (drawdown breaker)")
    day_start_equity = money_field(default=Decimal(0), help_text="equity at the first mark of the UTC day")
    day_start_date = models.DateField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"account of bot {self.bot_id}"


class Order(AppendOnlyModel):
    class Side(models.TextChoices):
        BUY = "buy"
        SELL = "sell"

    class Type(models.TextChoices):
        MARKET = "market"
        LIMIT = "limit"
        STOP = "stop"
        TAKE_PROFIT = "take_profit"

    class Status(models.TextChoices):
        PENDING_SUBMIT = "pending_submit"
        OPEN = "open"
        PARTIALLY_FILLED = "partially_filled"
        FILLED = "filled"
        CANCELED = "canceled"
        REJECTED = "rejected"
        UNKNOWN = "unknown"

    class Intent(models.TextChoices):
        OPEN = "open"
        CLOSE = "close"
        STOP_LOSS = "stop_loss"
        TAKE_PROFIT = "take_profit"
        LIQUIDATION = "liquidation"

    ACTIVE_STATUSES = (Status.PENDING_SUBMIT, Status.OPEN, Status.PARTIALLY_FILLED, Status.UNKNOWN)

    # PROTECT everywhere in the books: deleting a bot (or a user) never takes its history along.
    bot = models.ForeignKey("bots.Bot", on_delete=models.PROTECT, related_name="orders")
    cycle = models.ForeignKey("bots.Cycle", on_delete=models.PROTECT, null=True, blank=True, related_name="orders")
    position = models.ForeignKey(
        "trading.Position", on_delete=models.PROTECT, null=True, blank=True, related_name="orders"
    )
    # Deterministic (bot, slot, leg): written before the exchange is called and sent with the
    # order, so a retry finds the order instead of placing it again.
    client_order_id = models.CharField(max_length=64, unique=True)
    exchange_order_id = models.CharField(max_length=128, blank=True)
    symbol = models.CharField(max_length=40)
    side = models.CharField(max_length=4, choices=Side.choices)
    type = models.CharField(max_length=16, choices=Type.choices, default=Type.MARKET)
    intent = models.CharField(max_length=16, choices=Intent.choices)
    reduce_only = models.BooleanField(default=False)
    quantity = quantity_field()
    price = price_field(null=True, blank=True, help_text="limit or trigger price")
    leverage = models.DecimalField(max_digits=6, decimal_places=2, default=Decimal(1))
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING_SUBMIT)
    filled_quantity = quantity_field(default=Decimal(0))
    average_price = price_field(null=True, blank=True)
    fee = money_field(default=Decimal(0))
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # Trades list per bot (API, dashboard): WHERE bot_id=? ORDER BY created_at DESC.
            models.Index(fields=["bot", "-created_at"], name="order_bot_created"),
            # Reconciliation after a crash: WHERE bot_id=? AND status IN (active statuses).
            models.Index(fields=["bot", "status"], name="order_bot_status"),
        ]

    def __str__(self) -> str:
        return f"{self.side} {self.quantity} {self.symbol} ({self.status})"


class Fill(AppendOnlyModel):
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="fills")
    bot = models.ForeignKey("bots.Bot", on_delete=models.PROTECT, related_name="fills")
    symbol = models.CharField(max_length=40)
    side = models.CharField(max_length=4, choices=Order.Side.choices)
    quantity = quantity_field()
    price = price_field()
    fee = money_field(default=Decimal(0))
    exchange_fill_id = models.CharField(max_length=128, blank=True)
    market_time = models.DateTimeField(null=True, blank=True, help_text="candle time the fill priced at")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["bot", "-created_at"], name="fill_bot_created")]

    def __str__(self) -> str:
        return f"{self.side} {self.quantity} {self.symbol} @ {self.price}"


class Position(AppendOnlyModel):
    class Side(models.TextChoices):
        LONG = "long"
        SHORT = "short"

    class Status(models.TextChoices):
        OPEN = "open"
        CLOSED = "closed"

    class CloseReason(models.TextChoices):
        DECISION = "decision"
        STOP_LOSS = "stop_loss"
        TAKE_PROFIT = "take_profit"
        LIQUIDATION = "liquidation"
        BOT_STOPPED = "bot_stopped"
        BREAKER = "breaker"
        MANUAL = "manual", "Manual close"

    bot = models.ForeignKey("bots.Bot", on_delete=models.PROTECT, related_name="positions")
    symbol = models.CharField(max_length=40)
    side = models.CharField(max_length=5, choices=Side.choices)
    status = models.CharField(max_length=6, choices=Status.choices, default=Status.OPEN)
    quantity = quantity_field(help_text="base units (contracts x contract size)")
    # Base units per contract of the market it was opened on (1 on spot): its fills are in the
    # exchange's units (contracts), so the ledger check compares quantity with fills x this.
    contract_size = quantity_field(default=Decimal(1))
    entry_price = price_field()
    leverage = models.DecimalField(max_digits=6, decimal_places=2, default=Decimal(1))
    margin = money_field()
    stop_loss = price_field(null=True, blank=True)
    take_profit = price_field(null=True, blank=True)
    liquidation_price = price_field(null=True, blank=True)
    thesis = models.TextField(blank=True, help_text="the reasoning the position was opened with")
    invalidation = models.TextField(blank=True, help_text="what would prove the thesis wrong")
    confidence = models.DecimalField(max_digits=4, decimal_places=3, null=True, blank=True)
    exit_price = price_field(null=True, blank=True)
    realized_pnl = money_field(default=Decimal(0), help_text="gross of fees")
    fees = money_field(default=Decimal(0))
    close_reason = models.CharField(max_length=16, choices=CloseReason.choices, blank=True)
    # Market (candle) time up to which stop-loss/take-profit/liquidation have been checked.
    checked_until = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    opened_cycle = models.ForeignKey("bots.Cycle", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    # A manual close (bots.services.position_close): who asked for it. PROTECT like every key of
    # the books: a user who closed a position is deactivated, never deleted from its history.
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            # At most one open position per market: "no adding to an open position" is also
            # enforced by the database.
            models.UniqueConstraint(fields=["bot", "symbol"], condition=Q(status="open"), name="uniq_open_position"),
        ]
        indexes = [models.Index(fields=["bot", "status"], name="position_bot_status")]

    def __str__(self) -> str:
        return f"{self.side} {self.quantity} {self.symbol} ({self.status})"


class EquitySnapshot(AppendOnlyModel):
    """A bot's account marked to market once per cycle (an equity mark)."""

    bot = models.ForeignKey("bots.Bot", on_delete=models.PROTECT, related_name="equity_snapshots")
    cycle = models.ForeignKey("bots.Cycle", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    time = models.DateTimeField()
    market_time = models.DateTimeField(null=True, blank=True)
    # The market clock (epoch seconds, never running backwards: trading.statistics.advance_clock)
    # and how many grid periods this mark opens a bucket of (trading.statistics.grid_level).
    # Derived from the bot's previous marks when the mark is saved.
    market_clock = models.BigIntegerField()
    grid_level = models.PositiveSmallIntegerField()
    equity = money_field()
    cash = money_field()
    unrealized_pnl = money_field(default=Decimal(0))
    realized_pnl = money_field(default=Decimal(0))
    fees = money_field(default=Decimal(0))
    llm_cost = money_field(default=Decimal(0), help_text="USD, the bot's total so far")
    llm_cost_quote = money_field(default=Decimal(0), help_text="the total so far in the quote currency")
    llm_cost_unconverted = money_field(default=Decimal(0), help_text="USD of the total no rate converted")
    # The closes the account was marked at ({symbol: price}), and buy-and-hold of the bot's
    # symbols, equal weights bought at its first mark: mean of price / first-mark price (null
    # without every price). The leaderboard's excess return compares the bot with it.
    prices = models.JSONField(null=True, blank=True)
    benchmark = models.DecimalField(max_digits=30, decimal_places=12, null=True, blank=True)

    class Meta:
        ordering = ["-time"]
        indexes = [
            # Equity series per bot and period: WHERE bot_id=? AND time >= ? ORDER BY time.
            models.Index(fields=["bot", "time"], name="equity_bot_time"),
            # The leaderboard's grid: WHERE bot_id IN (...) AND grid_level >= ? AND time >= ?.
            models.Index(fields=["bot", "grid_level", "time"], name="equity_bot_grid"),
        ]

    def __str__(self) -> str:
        return f"{self.bot_id} {self.time:%Y-%m-%d %H:%M:%S} {self.equity}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self._state.adding and (self.market_clock is None or self.grid_level is None):
            self.derive_from_previous()
        super().save(*args, **kwargs)

    def derive_from_previous(self) -> None:
        """Set the market clock, grid level and benchmark of this new mark from the bot's marks
        before it (two indexed reads: the latest marks, and the first mark's prices)."""
        from marketdata.timeframes import timeframe_seconds, to_epoch_seconds
        from trading import statistics

        earlier = EquitySnapshot.objects.filter(bot_id=self.bot_id, time__lte=self.time).exclude(pk=self.pk)
        recent = list(earlier.order_by("-time", "-pk").values("market_clock", "market_time")[:1])
        latest = recent[0] if recent else None
        anchor_row = latest
        if latest is not None and latest["market_time"] is None:
            anchor_row = (
                earlier.filter(market_time__isnull=False)
                .order_by("-time", "-pk")
                .values("market_clock", "market_time")
                .first()
            )
        latest_clock = None if latest is None else latest["market_clock"]
        self.market_clock = statistics.advance_clock(
            latest_clock=latest_clock,
            anchor=None
            if anchor_row is None or anchor_row["market_time"] is None
            else (anchor_row["market_clock"], to_epoch_seconds(anchor_row["market_time"])),
            market_seconds=None if self.market_time is None else to_epoch_seconds(self.market_time),
            wall_seconds=to_epoch_seconds(self.time),
            step_seconds=timeframe_seconds(self.bot.timeframe),
        )
        self.grid_level = statistics.grid_level(previous_clock=latest_clock, clock=self.market_clock)
        if self.benchmark is None and self.prices:
            first = earlier.filter(prices__isnull=False).order_by("time", "pk").values_list("prices", flat=True).first()
            self.benchmark = statistics.buy_and_hold_index(
                symbols=list(self.bot.symbols), prices=self.prices, first_prices=first or self.prices
            )


class AccountAdjustment(AppendOnlyModel):
    """A manual correction of a trading account's cash: a new entry with who and why, never an edit.

    Written only by `trading.services.account_adjust` (the admin's form), which moves the cash in
    the same transaction. The ledger check counts it: cash = capital + realized - fees - margin held
    + adjustments. In the account's (quote) currency.
    """

    bot = models.ForeignKey("bots.Bot", on_delete=models.PROTECT, related_name="adjustments")
    amount = money_field(help_text="added to the cash (negative: taken out), in the quote currency")
    reason = models.TextField(help_text="why the books are corrected (shown with the entry for good)")
    cash_after = money_field(help_text="the account's cash after this entry")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["bot", "created_at"], name="adjustment_bot_created")]

    def __str__(self) -> str:
        return f"{self.amount:+f} to bot {self.bot_id}"
