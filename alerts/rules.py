"""Alert rules as pure functions: which rules an event matches, when a condition holds, and when
the cooldown lets a rule fire. Plain values in, plain values out: no ORM, tested with hypothesis.

Vocabulary:
- an *event* is something that happened (a fill, a breaker trip); `EVENT_RULE_KINDS` says which
  rule kinds hear it. Events come from `alerts.services.alert_raise` (the bots' services) and
  from the evaluator reading the books (fills, closed positions).
- a *condition* is a measurement over the books or the market (drawdown, volatility, ...) that
  the evaluator takes for every rule of that kind; the rule alerts when its condition *starts* to
  hold (edge-triggered), not on every evaluation while it keeps holding.
- a rule's *subject* is what it watches: one bot (`bot:7`), one market (`market:coinbase:BTC/USD:1h`)
  or the whole account (`account`). Cooldown and state are per (rule, subject): a rule over every
  bot tells about bot B even if it just told about bot A, but never twice about A within its
  cooldown.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal

HUNDRED = Decimal(100)


class Event:
    """What happened. Condition events share their rule kind's name."""

    TRADE_FILLED = "trade_filled"
    POSITION_CLOSED = "position_closed"
    BREAKER_TRIPPED = "breaker_tripped"
    BOT_PAUSED = "bot_paused"
    BOT_STOPPED = "bot_stopped"
    PNL_MOVE = "pnl_move"
    DRAWDOWN = "drawdown"
    DAILY_LOSS = "daily_loss"
    VOLATILITY = "volatility"
    FAILURE_RATE = "failure_rate"
    LLM_SPEND = "llm_spend"
    UNUSUAL_ACTIVITY = "unusual_activity"
    # The platform telling a user about their alerting itself (a channel disabled): always in-app,
    # never filtered by a rule, so a user cannot switch off hearing that alerts stopped arriving.
    NOTICE = "notice"
    # A channel's test message (the test button): to that channel only.
    TEST = "test"


# Which rule kinds hear which event. A breaker pauses the bot: "bot stopped or paused" hears it too
# (one alert, sent once per channel, however many rules match).
EVENT_RULE_KINDS: dict[str, frozenset[str]] = {
    Event.TRADE_FILLED: frozenset({"trade_filled"}),
    Event.POSITION_CLOSED: frozenset({"position_closed"}),
    Event.BREAKER_TRIPPED: frozenset({"breaker_tripped", "bot_stopped"}),
    Event.BOT_PAUSED: frozenset({"bot_stopped"}),
    Event.BOT_STOPPED: frozenset({"bot_stopped"}),
}
CONDITION_KINDS = frozenset(
    {"pnl_move", "drawdown", "daily_loss", "volatility", "failure_rate", "llm_spend", "unusual_activity"}
)
# The alert kind (its badge in the feed) of each event.
ALERT_KIND_OF: dict[str, str] = {
    Event.TRADE_FILLED: "trade",
    Event.POSITION_CLOSED: "trade",
    Event.BREAKER_TRIPPED: "risk",
    Event.BOT_PAUSED: "system",
    Event.BOT_STOPPED: "system",
    Event.PNL_MOVE: "pnl",
    Event.DRAWDOWN: "risk",
    Event.DAILY_LOSS: "risk",
    Event.VOLATILITY: "risk",
    Event.FAILURE_RATE: "error",
    Event.LLM_SPEND: "risk",
    Event.UNUSUAL_ACTIVITY: "risk",
    Event.NOTICE: "system",
    Event.TEST: "system",
}

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}

# Rates need a few samples before they mean anything: 1 failure out of 1 cycle is not "100 %".
MIN_CYCLES_FOR_RATE = 3
# Unusual activity: at least this many trades in the window, and a norm from at least a day.
UNUSUAL_MIN_TRADES = 5
UNUSUAL_BASELINE_MINUTES = 7 * 24 * 60
UNUSUAL_MIN_HISTORY_MINUTES = 24 * 60
MAX_WINDOW_MINUTES = 7 * 24 * 60


@dataclass(frozen=True, slots=True)
class ThresholdSpec:
    """What a rule kind's threshold and window mean, and their bounds."""

    unit: str  # "%", "quote", "USD", "x" or "" (no threshold)
    required: bool
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    window: bool = False  # needs window_minutes
    help: str = ""


THRESHOLDS: dict[str, ThresholdSpec] = {
    "trade_filled": ThresholdSpec(
        "quote", False, Decimal(0), help="only fills of at least this notional (quote currency); empty: every fill"
    ),
    "position_closed": ThresholdSpec(
        "quote", False, Decimal(0), help="only closes whose net PnL is at least this far from 0; empty: every close"
    ),
    "pnl_move": ThresholdSpec(
        "%", True, Decimal("0.01"), Decimal(1000), window=True, help="equity moved this % (up or down) in the window"
    ),
    "drawdown": ThresholdSpec("%", True, Decimal("0.01"), HUNDRED, help="equity this % below its peak"),
    "daily_loss": ThresholdSpec("%", True, Decimal("0.01"), HUNDRED, help="equity this % below its 00:00 UTC value"),
    "volatility": ThresholdSpec(
        "%",
        True,
        Decimal("0.01"),
        Decimal(1000),
        window=True,
        help="a market's price moved this % in the window (market time)",
    ),
    "failure_rate": ThresholdSpec(
        "%",
        True,
        Decimal("0.01"),
        HUNDRED,
        window=True,
        help=f"this % of the cycles in the window failed or had invalid model output (at least {MIN_CYCLES_FOR_RATE} cycles)",
    ),
    "llm_spend": ThresholdSpec(
        "USD",
        True,
        Decimal("0.000001"),
        help="LLM cost since 00:00 UTC (one bot, or all your bots for a rule over every bot)",
    ),
    "breaker_tripped": ThresholdSpec("", False),
    "bot_stopped": ThresholdSpec("", False),
    "unusual_activity": ThresholdSpec(
        "x",
        True,
        Decimal("1.5"),
        Decimal(1000),
        window=True,
        help=f"trades in the window at least this many times the bot's norm of the last 7 days (and at least {UNUSUAL_MIN_TRADES})",
    ),
}


def rule_problems(*, kind: str, threshold: Decimal | None, window_minutes: int | None, symbol: str) -> dict[str, str]:
    """Field errors of a rule's settings for its kind ({} when it is valid)."""
    spec = THRESHOLDS.get(kind)
    if spec is None:
        return {"kind": f"unknown kind {kind!r}"}
    problems: dict[str, str] = {}
    if spec.unit == "":
        if threshold is not None:
            problems["threshold"] = "this kind has no threshold"
    elif threshold is None:
        if spec.required:
            problems["threshold"] = f"required ({spec.help})"
    elif not threshold.is_finite():
        problems["threshold"] = "must be a number"
    elif spec.minimum is not None and threshold < spec.minimum:
        problems["threshold"] = f"must be at least {spec.minimum} {spec.unit}".rstrip()
    elif spec.maximum is not None and threshold > spec.maximum:
        problems["threshold"] = f"must be at most {spec.maximum} {spec.unit}".rstrip()
    if spec.window:
        if window_minutes is None:
            problems["window_minutes"] = "required for this kind"
        elif not 1 <= window_minutes <= MAX_WINDOW_MINUTES:
            problems["window_minutes"] = f"between 1 and {MAX_WINDOW_MINUTES} minutes (a week)"
    elif window_minutes is not None:
        problems["window_minutes"] = "this kind has no window"
    if symbol and kind != "volatility":
        problems["symbol"] = "only a volatility rule watches one market"
    elif symbol and "/" not in symbol:
        problems["symbol"] = "a market symbol such as BTC/USD"
    return problems


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """A rule as plain values."""

    id: int
    kind: str
    bot_id: int | None
    severity: str
    cooldown_seconds: int
    channel_ids: tuple[int, ...] = ()
    threshold: Decimal | None = None
    window_minutes: int | None = None
    symbol: str = ""


@dataclass(frozen=True, slots=True)
class StateView:
    """A rule's memory for one subject."""

    active: bool = False
    last_fired_at: datetime | None = None


def louder(a: str, b: str) -> str:
    return a if SEVERITY_RANK.get(a, 0) >= SEVERITY_RANK.get(b, 0) else b


def cooldown_open(*, last_fired_at: datetime | None, cooldown_seconds: int, now: datetime) -> bool:
    """True when the rule may fire again for this subject."""
    return last_fired_at is None or now - last_fired_at >= timedelta(seconds=cooldown_seconds)


def event_step(*, state: StateView, cooldown_seconds: int, now: datetime) -> tuple[StateView, bool]:
    """An event for a rule and subject: fire if the cooldown allows; the new state and whether it fired."""
    if cooldown_open(last_fired_at=state.last_fired_at, cooldown_seconds=cooldown_seconds, now=now):
        return replace(state, last_fired_at=now), True
    return state, False


def condition_step(*, state: StateView, holding: bool, cooldown_seconds: int, now: datetime) -> tuple[StateView, bool]:
    """One evaluation of a condition: fire when it starts to hold and the cooldown allows.

    While it keeps holding after firing, nothing more is sent; once it stops holding it may fire
    again, but not before the cooldown has passed (a value wobbling around the threshold alerts
    once per cooldown). A start suppressed by the cooldown is not remembered as active, so the
    alert comes when the cooldown ends if the condition still holds then.
    """
    if not holding:
        return (replace(state, active=False) if state.active else state), False
    if state.active:
        return state, False
    if cooldown_open(last_fired_at=state.last_fired_at, cooldown_seconds=cooldown_seconds, now=now):
        return StateView(active=True, last_fired_at=now), True
    return state, False


def rule_hears(rule: RuleSpec, *, event: str, bot_id: int | None) -> bool:
    """Whether a rule listens to this event of this bot (kind and scope only)."""
    if rule.kind not in EVENT_RULE_KINDS.get(event, frozenset()):
        return False
    return rule.bot_id is None or rule.bot_id == bot_id


def event_passes(rule: RuleSpec, *, notional: Decimal | None = None, net_pnl: Decimal | None = None) -> bool:
    """A trade rule's size filter: fills below the notional, closes nearer 0 than the PnL, stay quiet."""
    if rule.threshold is None:
        return True
    if rule.kind == "trade_filled" and notional is not None:
        return abs(notional) >= rule.threshold
    if rule.kind == "position_closed" and net_pnl is not None:
        return abs(net_pnl) >= rule.threshold
    return True


def subject_of(*, bot_id: int | None) -> str:
    return f"bot:{bot_id}" if bot_id is not None else "account"


# --- Condition measurements (percentages as Decimal, None when undefined) -------------------------


def pct_below(*, reference: Decimal, value: Decimal) -> Decimal | None:
    """How far `value` is below `reference`, in % of it (drawdown from the peak, loss since 00:00)."""
    if reference <= 0:
        return None
    return max((reference - value) / reference * HUNDRED, Decimal(0))


def pct_change(*, before: Decimal | None, after: Decimal | None) -> Decimal | None:
    if before is None or after is None or before <= 0:
        return None
    return (after - before) / before * HUNDRED


def failure_rate_pct(*, total: int, bad: int) -> Decimal | None:
    if total < MIN_CYCLES_FOR_RATE:
        return None
    return Decimal(bad) / Decimal(total) * HUNDRED


def activity_norm(*, baseline_trades: int, baseline_minutes: int, window_minutes: int) -> Decimal | None:
    """The bot's usual number of trades in a window of this length, or None without a day of history."""
    if baseline_minutes < UNUSUAL_MIN_HISTORY_MINUTES:
        return None
    return Decimal(baseline_trades) * Decimal(window_minutes) / Decimal(baseline_minutes)


def unusual_multiple(*, recent_trades: int, norm: Decimal | None) -> Decimal | None:
    """How many times the norm the recent trades are (None: no norm, or too few trades to say)."""
    if norm is None or recent_trades < UNUSUAL_MIN_TRADES:
        return None
    # A bot that almost never trades: its norm counts as one trade per window, not as zero.
    return Decimal(recent_trades) / max(norm, Decimal(1))


def condition_holds(*, kind: str, threshold: Decimal, value: Decimal | None) -> bool:
    """Whether a measured value crosses the rule's threshold (moves count up and down)."""
    if value is None:
        return False
    if kind in ("pnl_move", "volatility"):
        return abs(value) >= threshold
    return value >= threshold
