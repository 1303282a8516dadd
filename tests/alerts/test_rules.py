"""Rule evaluation as pure functions: cooldown, edge-triggered conditions, matching, validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.rules import (
    Event,
    RuleSpec,
    StateView,
    activity_norm,
    condition_holds,
    condition_step,
    event_passes,
    event_step,
    failure_rate_pct,
    pct_below,
    pct_change,
    rule_hears,
    rule_problems,
    unusual_multiple,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)

steps = st.lists(
    st.tuples(st.integers(min_value=0, max_value=4000), st.booleans()),  # (seconds since the last step, holding)
    min_size=1,
    max_size=80,
)


@settings(max_examples=400)
@given(cooldown=st.integers(min_value=0, max_value=3600), events=steps)
def test_cooldown_never_lets_two_alerts_of_one_rule_through_inside_its_window(cooldown: int, events: list) -> None:
    state, now, fired = StateView(), T0, []
    for gap, _ in events:
        now += timedelta(seconds=gap)
        state, fire = event_step(state=state, cooldown_seconds=cooldown, now=now)
        if fire:
            fired.append(now)
    assert all(b - a >= timedelta(seconds=cooldown) for a, b in zip(fired, fired[1:], strict=False))
    # ... and it is a cooldown, not a silence: the first event always fires.
    assert fired and fired[0] == T0 + timedelta(seconds=events[0][0])


@settings(max_examples=400)
@given(cooldown=st.integers(min_value=0, max_value=3600), readings=steps)
def test_a_condition_fires_once_per_start_and_never_twice_inside_the_cooldown(cooldown: int, readings: list) -> None:
    state, now, fired = StateView(), T0, []
    previous = False
    for gap, holding in readings:
        now += timedelta(seconds=gap)
        state, fire = condition_step(state=state, holding=holding, cooldown_seconds=cooldown, now=now)
        if fire:
            assert holding, "a condition that does not hold never fires"
            fired.append(now)
        if holding and previous and fire:
            # Still holding since the last reading: it fired only because the cooldown had kept it back.
            assert len(fired) == 1 or fired[-1] - fired[-2] >= timedelta(seconds=cooldown)
        previous = holding
    assert all(b - a >= timedelta(seconds=cooldown) for a, b in zip(fired, fired[1:], strict=False))


def test_a_condition_held_throughout_alerts_once() -> None:
    state, fired = StateView(), 0
    for minute in range(600):
        state, fire = condition_step(state=state, holding=True, cooldown_seconds=60, now=T0 + timedelta(minutes=minute))
        fired += fire
    assert fired == 1


def test_a_start_kept_back_by_the_cooldown_alerts_when_the_cooldown_ends() -> None:
    state, fire = condition_step(state=StateView(), holding=True, cooldown_seconds=600, now=T0)
    assert fire
    state, _ = condition_step(state=state, holding=False, cooldown_seconds=600, now=T0 + timedelta(minutes=1))
    state, fire = condition_step(state=state, holding=True, cooldown_seconds=600, now=T0 + timedelta(minutes=2))
    assert not fire and not state.active
    state, fire = condition_step(state=state, holding=True, cooldown_seconds=600, now=T0 + timedelta(minutes=10))
    assert fire and state.active


def rule(kind: str, **extra: object) -> RuleSpec:
    return RuleSpec(id=1, kind=kind, bot_id=extra.pop("bot_id", None), severity="warning", cooldown_seconds=0, **extra)  # type: ignore[arg-type]


def test_which_rules_hear_which_events() -> None:
    assert rule_hears(rule("breaker_tripped"), event=Event.BREAKER_TRIPPED, bot_id=3)
    # A breaker pauses the bot: "stopped or paused" hears it too.
    assert rule_hears(rule("bot_stopped"), event=Event.BREAKER_TRIPPED, bot_id=3)
    assert rule_hears(rule("bot_stopped"), event=Event.BOT_PAUSED, bot_id=3)
    assert not rule_hears(rule("breaker_tripped"), event=Event.BOT_PAUSED, bot_id=3)
    assert not rule_hears(rule("drawdown"), event=Event.BREAKER_TRIPPED, bot_id=3)
    # A rule for one bot hears that bot only.
    assert rule_hears(rule("trade_filled", bot_id=3), event=Event.TRADE_FILLED, bot_id=3)
    assert not rule_hears(rule("trade_filled", bot_id=3), event=Event.TRADE_FILLED, bot_id=4)


def test_size_filters() -> None:
    big_only = rule("trade_filled", threshold=Decimal(1000))
    assert event_passes(big_only, notional=Decimal(1000))
    assert not event_passes(big_only, notional=Decimal(999))
    big_moves = rule("position_closed", threshold=Decimal(50))
    assert event_passes(big_moves, net_pnl=Decimal(-75)) and not event_passes(big_moves, net_pnl=Decimal(20))
    assert event_passes(rule("position_closed"), net_pnl=Decimal(0))


def test_measurements() -> None:
    assert pct_below(reference=Decimal(10000), value=Decimal(8800)) == Decimal(12)
    assert pct_below(reference=Decimal(10000), value=Decimal(10500)) == 0  # above the peak: no drawdown
    assert pct_below(reference=Decimal(0), value=Decimal(5)) is None
    assert pct_change(before=Decimal(100), after=Decimal(94)) == Decimal(-6)
    assert condition_holds(kind="volatility", threshold=Decimal(5), value=Decimal(-6))  # down moves count
    assert not condition_holds(kind="drawdown", threshold=Decimal(10), value=Decimal("9.99"))
    assert failure_rate_pct(total=2, bad=2) is None  # too few cycles to call it a rate
    assert failure_rate_pct(total=4, bad=3) == Decimal(75)
    norm = activity_norm(baseline_trades=168, baseline_minutes=7 * 24 * 60, window_minutes=60)
    assert norm == Decimal(1)
    assert unusual_multiple(recent_trades=6, norm=norm) == Decimal(6)
    assert unusual_multiple(recent_trades=4, norm=norm) is None  # too few trades to be unusual
    assert activity_norm(baseline_trades=5, baseline_minutes=600, window_minutes=60) is None  # no day of history


def test_rule_validation_names_the_field() -> None:
    assert rule_problems(kind="drawdown", threshold=None, window_minutes=None, symbol="") == {
        "threshold": "required (equity this % below its peak)"
    }
    assert "window_minutes" in rule_problems(kind="volatility", threshold=Decimal(5), window_minutes=None, symbol="")
    assert "threshold" in rule_problems(kind="drawdown", threshold=Decimal(150), window_minutes=None, symbol="")
    assert "threshold" in rule_problems(kind="breaker_tripped", threshold=Decimal(1), window_minutes=None, symbol="")
    assert "symbol" in rule_problems(kind="drawdown", threshold=Decimal(5), window_minutes=None, symbol="BTC/USD")
    assert rule_problems(kind="volatility", threshold=Decimal(5), window_minutes=60, symbol="ETH/USD") == {}
    assert rule_problems(kind="nope", threshold=None, window_minutes=None, symbol="") == {"kind": "unknown kind 'nope'"}
