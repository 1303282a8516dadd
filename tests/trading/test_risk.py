"""The risk manager: hand-checked examples, then properties over randomized inputs."""

from __future__ import annotations

from dataclasses import fields, replace
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketdata.types import MarketInfo
from trading.risk import evaluate
from trading.risk_types import (
    AccountState,
    ActionOutcome,
    OpenPosition,
    ProposedAction,
    RiskInput,
    RiskLimits,
    RiskResult,
)

D = Decimal
BTC = MarketInfo(
    symbol="BTC/USDT",
    base="BTC",
    quote="USDT",
    amount_step=D("0.001"),
    price_step=D("0.1"),
    min_amount=D("0.001"),
    min_notional=D(5),
)
ETH = MarketInfo(
    symbol="ETH/USDT", base="ETH", quote="USDT", amount_step=D("0.01"), price_step=D("0.01"), min_notional=D(5)
)
PERP = MarketInfo(
    symbol="BTC/USDT:USDT",
    base="BTC",
    quote="USDT",
    amount_step=D("0.001"),
    price_step=D("0.1"),
    min_amount=D("0.001"),
    min_notional=D(100),
    contract=True,
)
MARKETS = {m.symbol: m for m in (BTC, ETH, PERP)}
PRICES = {"BTC/USDT": D(50000), "ETH/USDT": D(2500), "BTC/USDT:USDT": D(50000)}
NO_FEE = D(0)
HAS_CONTRACT_SIZE = "contract_size" in {f.name for f in fields(MarketInfo)}


def limits(**overrides: Any) -> RiskLimits:
    values: dict[str, Any] = {
        "max_position_pct": D(20),
        "max_leverage": D(3),
        "max_exposure_pct": D(100),
        "max_trades_per_day": 20,
        "daily_loss_limit_pct": D(5),
        "max_drawdown_pct": D(20),
    }
    values.update(overrides)
    return RiskLimits(**values)


def account(**overrides: Any) -> AccountState:
    values: dict[str, Any] = {
        "equity": D(10000),
        "cash": D(10000),
        "peak_equity": D(10000),
        "day_start_equity": D(10000),
        "trades_today": 0,
    }
    values.update(overrides)
    return AccountState(**values)


def run(
    *actions: ProposedAction,
    positions: tuple[OpenPosition, ...] = (),
    risk_limits: RiskLimits | None = None,
    state: AccountState | None = None,
    prices: dict[str, Decimal] | None = None,
    allowed: list[str] | None = None,
    fee_bps: Decimal = NO_FEE,
) -> RiskResult:
    return evaluate(
        RiskInput(
            actions=list(actions),
            limits=risk_limits or limits(),
            account=state or account(),
            positions=list(positions),
            markets=MARKETS,
            prices=PRICES if prices is None else prices,
            allowed_symbols=list(MARKETS) if allowed is None else allowed,
            fee_bps=fee_bps,
        )
    )


def only(result: RiskResult) -> ActionOutcome:
    (outcome,) = result.outcomes
    return outcome


def long_btc(**kwargs: Any) -> ProposedAction:
    return ProposedAction(symbol="BTC/USDT", action="open_long", **kwargs)


def btc_position(side: str = "long", quantity: str = "0.1") -> OpenPosition:
    return OpenPosition(
        symbol="BTC/USDT", side=side, quantity=D(quantity), entry_price=D(48000), leverage=D(1), margin=D(4800)
    )


# --- Examples ------------------------------------------------------------------------------------


def test_open_long_sized_from_equity_and_rounded() -> None:
    outcome = only(run(long_btc(size_pct=D(10), leverage=D(1), stop_loss=D("47500.04"), take_profit=D("55000.06"))))
    assert outcome.verdict == "approved"
    order = outcome.order
    assert order is not None
    # 10% of 10,000 = 1,000 margin at 1x -> 0.02 BTC at 50,000.
    assert (order.intent, order.side, order.quantity, order.margin, order.leverage) == (
        "open",
        "long",
        D("0.020"),
        D(1000),
        D(1),
    )
    # Levels rounded to the 0.1 tick.
    assert (order.stop_loss, order.take_profit) == (D("47500.0"), D("55000.1"))
    assert "open long 0.02 BTC/USDT" in outcome.reasons[-1]


def test_missing_stop_loss_is_allowed_but_noted() -> None:
    outcome = only(run(long_btc(size_pct=D(10))))
    assert outcome.verdict == "approved"
    assert any("no stop-loss" in r for r in outcome.reasons)


def test_leverage_and_position_size_are_clamped() -> None:
    outcome = only(run(ProposedAction(symbol="BTC/USDT:USDT", action="open_long", size_pct=D(50), leverage=D(10))))
    assert outcome.verdict == "clamped"
    order = outcome.order
    assert order is not None
    # Margin 20% of 10,000 = 2,000 at 3x = 6,000 notional -> 0.12 BTC.
    assert (order.leverage, order.margin, order.quantity) == (D(3), D(2000), D("0.120"))
    assert any("leverage clamped from 10x to the limit 3x" in r for r in outcome.reasons)
    assert any("margin clamped from 5000" in r and "max_position_pct 20" in r for r in outcome.reasons)


def test_spot_trades_without_leverage() -> None:
    outcome = only(run(long_btc(size_pct=D(10), leverage=D(3))))
    assert outcome.verdict == "clamped"
    assert outcome.order is not None and outcome.order.leverage == 1 and outcome.order.quantity == D("0.02")
    assert any("spot markets trade without leverage" in r for r in outcome.reasons)


def test_margin_and_fee_fit_in_free_cash() -> None:
    # Only 1,000 free: margin m with m + m x 0.1% <= 1,000 -> m <= 999.000999...; 0.019 BTC.
    outcome = only(run(long_btc(size_pct=D(20)), state=account(cash=D(1000)), fee_bps=D(10)))
    assert outcome.verdict == "clamped"
    assert outcome.order is not None
    assert (outcome.order.quantity, outcome.order.margin) == (D("0.019"), D(950))
    assert any("free cash 1000 minus the fee" in r for r in outcome.reasons)


def test_total_exposure_is_capped() -> None:
    # 0.1 BTC open = 5,000 at the current price; 100% of 10,000 leaves 5,000 for ETH.
    outcome = only(
        run(
            ProposedAction(symbol="ETH/USDT", action="open_long", size_pct=D(80)),
            positions=(btc_position(),),
            risk_limits=limits(max_position_pct=D(80)),
        )
    )
    assert outcome.verdict == "clamped"
    assert outcome.order is not None
    assert outcome.order.quantity == D(2) and outcome.order.margin == D(5000)
    assert any("total exposure stays within 10000" in r for r in outcome.reasons)

    full = only(
        run(
            ProposedAction(symbol="ETH/USDT", action="open_long", size_pct=D(10)),
            positions=(btc_position(quantity="0.2"),),
        )
    )
    assert full.verdict == "rejected" and "exposure limit reached" in full.reasons[0]


def test_opens_in_one_decision_share_cash_exposure_and_the_trade_count() -> None:
    result = run(
        long_btc(size_pct=D(20)),
        ProposedAction(symbol="ETH/USDT", action="open_long", size_pct=D(20)),
        state=account(trades_today=19, cash=D(10000)),
    )
    first, second = result.outcomes
    assert first.verdict == "approved"
    assert second.verdict == "rejected" and "daily trade limit reached (20 of 20" in second.reasons[0]
    assert len(result.orders) == 1

    shared = run(
        long_btc(size_pct=D(20)),
        ProposedAction(symbol="ETH/USDT", action="open_long", size_pct=D(20)),
        state=account(cash=D(3000)),
    )
    btc, eth = shared.outcomes
    assert btc.order is not None and btc.order.margin == D(2000)
    # What the first open used is gone for the second: 1,000 left -> 0.4 ETH.
    assert eth.verdict == "clamped" and eth.order is not None and eth.order.margin == D(1000)


def test_no_adding_or_flipping() -> None:
    position = btc_position()
    for action in ("open_long", "open_short"):
        outcome = only(run(ProposedAction(symbol="BTC/USDT", action=action, size_pct=D(5)), positions=(position,)))
        assert outcome.verdict == "rejected"
        assert "already open" in outcome.reasons[0]


def test_close_uses_the_position() -> None:
    outcome = only(run(ProposedAction(symbol="BTC/USDT", action="close"), positions=(btc_position(),)))
    assert outcome.verdict == "approved"
    order = outcome.order
    assert order is not None
    assert (order.intent, order.side, order.quantity, order.margin, order.reference_price) == (
        "close",
        "long",
        D("0.1"),
        D(4800),
        D(50000),
    )
    missing = only(run(ProposedAction(symbol="ETH/USDT", action="close")))
    assert missing.verdict == "rejected" and "no open position" in missing.reasons[0]


def test_close_passes_under_breakers_and_outside_the_symbol_list() -> None:
    result = run(
        ProposedAction(symbol="BTC/USDT", action="close"),
        ProposedAction(symbol="ETH/USDT", action="open_long", size_pct=D(5)),
        positions=(btc_position(),),
        state=account(equity=D(7000), cash=D(2200)),
        allowed=["ETH/USDT"],
    )
    close, open_ = result.outcomes
    assert result.breaker == "drawdown"
    assert close.verdict == "approved" and close.order is not None
    assert any("no longer among the bot's symbols" in r for r in close.reasons)
    assert open_.verdict == "rejected" and open_.reasons[0].startswith("drawdown breaker")


def test_drawdown_breaker() -> None:
    result = run(long_btc(size_pct=D(5)), state=account(equity=D(7900), cash=D(7900), day_start_equity=D(7900)))
    assert result.breaker == "drawdown"
    assert "21% below its peak 10000 (limit 20%)" in result.breaker_reason
    assert only(result).verdict == "rejected"
    # Just under the limit: no breaker.
    calm = run(long_btc(size_pct=D(5)), state=account(equity=D(8001), cash=D(8001), day_start_equity=D(8001)))
    assert calm.breaker is None and only(calm).verdict == "approved"


def test_daily_loss_breaker() -> None:
    result = run(long_btc(size_pct=D(5)), state=account(equity=D(9500), cash=D(9500), peak_equity=D(9600)))
    assert result.breaker == "daily_loss"
    assert "5% below the day's start 10000 (limit 5%)" in result.breaker_reason
    assert only(result).verdict == "rejected"


def test_breaker_is_reported_without_any_open() -> None:
    result = run(ProposedAction(symbol="BTC/USDT", action="hold"), state=account(equity=D(5000)))
    assert result.breaker == "drawdown"
    assert only(result).verdict == "hold"


def test_short_needs_a_contract_market() -> None:
    spot = only(run(ProposedAction(symbol="BTC/USDT", action="open_short", size_pct=D(5))))
    assert spot.verdict == "rejected" and "spot market" in spot.reasons[0]
    perp = only(
        run(
            ProposedAction(
                symbol="BTC/USDT:USDT",
                action="open_short",
                size_pct=D(10),
                leverage=D(2),
                stop_loss=D(52000),
                take_profit=D(45000),
            )
        )
    )
    assert perp.verdict == "approved"
    assert perp.order is not None and perp.order.side == "short" and perp.order.quantity == D("0.04")


def test_stops_on_the_wrong_side_are_rejected() -> None:
    wrong_stop = only(run(long_btc(size_pct=D(5), stop_loss=D(51000))))
    assert wrong_stop.verdict == "rejected" and "stop_loss 51000 must be below the price 50000" in wrong_stop.reasons[0]
    wrong_target = only(run(long_btc(size_pct=D(5), take_profit=D(49000))))
    assert wrong_target.verdict == "rejected" and "take_profit 49000 must be above" in wrong_target.reasons[0]
    short_stop = only(
        run(ProposedAction(symbol="BTC/USDT:USDT", action="open_short", size_pct=D(5), stop_loss=D(49000)))
    )
    assert short_stop.verdict == "rejected" and "must be above" in short_stop.reasons[0]
    # Below the price, but the tick rounds it onto the price.
    rounds_onto_price = only(run(long_btc(size_pct=D(5), stop_loss=D("49999.98"))))
    assert rounds_onto_price.verdict == "rejected" and "rounds to 50000 at the tick 0.1" in rounds_onto_price.reasons[0]


def test_minimums_after_rounding() -> None:
    # 0.001% of 10,000 = 0.1 USDT -> 0.000002 BTC rounds to zero.
    tiny = only(run(long_btc(size_pct=D("0.001"))))
    assert tiny.verdict == "rejected" and "rounds to zero" in tiny.reasons[0]
    # 0.9% of 10,000 at 1x = 90 of notional, below the perp's minimum of 100.
    small = only(run(ProposedAction(symbol="BTC/USDT:USDT", action="open_long", size_pct=D("0.9"))))
    assert small.verdict == "rejected" and "below BTC/USDT:USDT's minimum 100" in small.reasons[0]


def test_one_action_per_symbol_and_unknown_symbols() -> None:
    result = run(long_btc(size_pct=D(5)), ProposedAction(symbol="BTC/USDT", action="close"))
    assert [o.verdict for o in result.outcomes] == ["approved", "rejected"]
    assert "second action for BTC/USDT" in result.outcomes[1].reasons[0]

    not_allowed = only(run(long_btc(size_pct=D(5)), allowed=["ETH/USDT"]))
    assert not_allowed.verdict == "rejected" and "not traded by this bot" in not_allowed.reasons[0]
    no_price = only(run(long_btc(size_pct=D(5)), prices={}))
    assert no_price.verdict == "rejected" and "no usable price" in no_price.reasons[0]
    unknown = only(run(ProposedAction(symbol="BTC/USDT", action="buy_the_dip")))
    assert unknown.verdict == "rejected" and "unknown action" in unknown.reasons[0]


def test_hold() -> None:
    outcome = only(run(ProposedAction(symbol="ETH/USDT", action="hold")))
    assert (outcome.verdict, outcome.order, outcome.reasons) == ("hold", None, ["hold: no order"])


def test_bad_numbers_are_rejected_not_raised() -> None:
    cases = [
        run(long_btc(size_pct=D(5)), state=account(equity=D(0), cash=D(0), peak_equity=D(0), day_start_equity=D(0))),
        run(long_btc(size_pct=D(5)), state=account(equity=D(-50), cash=D(0), peak_equity=D(0), day_start_equity=D(0))),
        run(long_btc(size_pct=D(5)), prices={"BTC/USDT": D(0)}),
        run(long_btc(size_pct=D("NaN"))),
        run(long_btc(size_pct=D(5), leverage=D("-2"))),
        run(long_btc(size_pct=D(5), stop_loss=D("sNaN"))),
        run(long_btc(size_pct=D(5)), state=account(cash=D("Infinity"))),
        run(long_btc(size_pct=D(5)), prices={"BTC/USDT": D("1e999999")}),
        run(long_btc(size_pct=D(5)), risk_limits=limits(max_drawdown_pct=D("NaN"))),
    ]
    for result in cases:
        outcome = only(result)
        assert outcome.verdict == "rejected" and outcome.order is None and outcome.reasons[0]


# --- Properties ----------------------------------------------------------------------------------

SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT:USDT", "XRP/USDT:USDT"]


def decimals(low: str, high: str, places: int = 4) -> st.SearchStrategy[Decimal]:
    return st.decimals(min_value=D(low), max_value=D(high), places=places, allow_nan=False, allow_infinity=False)


@st.composite
def market_infos(draw: st.DrawFn, symbol: str) -> MarketInfo:
    amount_step = draw(st.sampled_from([D(1), D("0.1"), D("0.001"), D("0.00001")]))
    extra: dict[str, Any] = {}
    if HAS_CONTRACT_SIZE and symbol.endswith(":USDT"):
        extra["contract_size"] = draw(st.sampled_from([D(1), D("0.01"), D(10)]))
    return MarketInfo(
        symbol=symbol,
        base=symbol.split("/")[0],
        quote="USDT",
        amount_step=amount_step,
        price_step=draw(st.sampled_from([D(1), D("0.5"), D("0.01"), D("0.0001")])),
        min_amount=amount_step * draw(st.integers(0, 5)),
        min_notional=draw(st.sampled_from([D(0), D(5), D(10), D(100)])),
        contract=symbol.endswith(":USDT"),
        **extra,
    )


def mostly(probable: st.SearchStrategy[Decimal], rare: st.SearchStrategy[Decimal]) -> st.SearchStrategy[Decimal]:
    """Mostly values that let orders through (so the limits are exercised), sometimes anything."""
    return st.one_of(probable, probable, probable, rare)


@st.composite
def risk_inputs(draw: st.DrawFn, calm: bool = False) -> RiskInput:
    """Random decisions, limits, accounts and markets. `calm`: every symbol known, priced and
    allowed, no breaker, trades left, stops on the right side, so the sizing limits are what
    decides (most opens then reach the clamps)."""
    markets = {s: draw(market_infos(s)) for s in SYMBOLS if calm or draw(st.integers(0, 5)) > 0 or s == "BTC/USDT"}
    prices = {
        s: draw(decimals("0.01", "100000", 2))
        for s in SYMBOLS
        if s in markets and (calm or draw(st.integers(0, 9)) > 0)
    }
    equity = draw(decimals("1", "10000000", 2))
    state = AccountState(
        equity=equity,
        cash=draw(mostly(decimals("0.2", "1", 4), decimals("0", "1", 4))) * equity,
        peak_equity=equity if calm else equity * draw(mostly(decimals("1", "1.05", 3), decimals("0.5", "2", 3))),
        day_start_equity=equity
        if calm
        else equity * draw(mostly(decimals("0.97", "1.02", 3), decimals("0.5", "2", 3))),
        trades_today=0 if calm else draw(st.integers(0, 12)),
    )
    risk_limits = RiskLimits(
        max_position_pct=draw(decimals("0.1", "100", 1)),
        max_leverage=draw(decimals("1", "125", 0)),
        max_exposure_pct=draw(decimals("1", "1000", 0)),
        max_trades_per_day=draw(st.integers(6, 30) if calm else st.integers(0, 30)),
        daily_loss_limit_pct=draw(mostly(decimals("5", "100", 1), decimals("0.1", "100", 1))),
        max_drawdown_pct=draw(mostly(decimals("10", "100", 1), decimals("0.1", "100", 1))),
    )
    positions = []
    for symbol in SYMBOLS:
        if draw(st.integers(0, 4)) == 0:
            positions.append(
                OpenPosition(
                    symbol=symbol,
                    side=draw(st.sampled_from(["long", "short"])),
                    quantity=draw(decimals("0.001", "100", 3)),
                    entry_price=draw(decimals("0.01", "100000", 2)),
                    leverage=draw(decimals("1", "10", 0)),
                    margin=draw(decimals("1", "100000", 2)),
                )
            )
    actions = []
    chosen = draw(st.lists(st.sampled_from(SYMBOLS if calm else [*SYMBOLS, "DOGE/USDT"]), max_size=5, unique=True))
    if chosen and not calm and draw(st.integers(0, 4)) == 0:
        chosen.append(chosen[0])  # sometimes a second action for a symbol
    for symbol in chosen:
        verb = draw(st.sampled_from(["open_long", "open_long", "open_short", "open_short", "close", "hold"]))
        reference = prices.get(symbol, D(100))

        def level(below: bool, reference: Decimal = reference) -> Decimal | None:
            if draw(st.booleans()):
                return None
            correct = decimals("0.8", "0.999", 3) if below else decimals("1.001", "1.2", 3)
            factor = draw(correct if calm else mostly(correct, decimals("0.5", "1.5", 3)))
            return (reference * factor).quantize(D("0.0001"))

        long = verb != "open_short"
        actions.append(
            ProposedAction(
                symbol=symbol,
                action=verb,
                size_pct=draw(decimals("0", "150", 2)),
                leverage=draw(decimals("0.5", "150", 1)),
                stop_loss=level(below=long),
                take_profit=level(below=not long),
            )
        )
    allowed = list(SYMBOLS) if calm else [s for s in SYMBOLS if draw(st.integers(0, 9)) > 0]
    return RiskInput(
        actions=actions,
        limits=risk_limits,
        account=state,
        positions=positions,
        markets=markets,
        prices=prices,
        allowed_symbols=allowed,
        fee_bps=draw(decimals("0", "50", 1)),
    )


def contract_size(info: MarketInfo) -> Decimal:
    return getattr(info, "contract_size", D(1))


def expected_breaker(inp: RiskInput) -> str | None:
    a, lim = inp.account, inp.limits
    peak = max(a.peak_equity, a.equity)
    if (peak - a.equity) / peak * 100 >= lim.max_drawdown_pct:
        return "drawdown"
    if (a.day_start_equity - a.equity) / a.day_start_equity * 100 >= lim.daily_loss_limit_pct:
        return "daily_loss"
    return None


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(risk_inputs())
def test_every_approved_open_respects_every_limit(inp: RiskInput) -> None:
    check_limits(inp, evaluate(inp))


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(risk_inputs(calm=True))
def test_sized_opens_respect_every_limit(inp: RiskInput) -> None:
    result = evaluate(inp)
    check_limits(inp, result)
    # With every symbol known, priced and allowed and no breaker, none of those is ever a reason.
    assert result.breaker is None
    for outcome in result.outcomes:
        for phrase in ("breaker:", "trade limit", "not traded", "second action", "no market", "no usable price"):
            assert all(phrase not in reason for reason in outcome.reasons)


def check_limits(inp: RiskInput, result: RiskResult) -> None:
    a, lim = inp.account, inp.limits
    fee_rate = inp.fee_bps / 10000
    held = {p.symbol: p for p in inp.positions}

    assert len(result.outcomes) == len(inp.actions)
    assert result.breaker == expected_breaker(inp)
    for action, outcome in zip(inp.actions, result.outcomes, strict=True):
        assert outcome.symbol == action.symbol and outcome.reasons and all(outcome.reasons)
        assert (outcome.order is not None) == (outcome.verdict in ("approved", "clamped"))

    seen: set[str] = set()
    for outcome in result.outcomes:
        if outcome.symbol in seen:  # only the first action of a symbol counts
            assert outcome.verdict == "rejected" and outcome.order is None
        seen.add(outcome.symbol)
    opens = [o for o in result.outcomes if o.order is not None and o.order.intent == "open"]
    closes = [o for o in result.outcomes if o.order is not None and o.order.intent == "close"]

    for outcome in closes:
        assert outcome.order is not None
        position = held[outcome.symbol]
        assert (outcome.order.side, outcome.order.quantity) == (position.side, position.quantity)

    if result.breaker is not None:
        assert opens == []
    if opens:
        assert a.trades_today + len(opens) <= lim.max_trades_per_day

    existing = D(0)
    for position in inp.positions:
        price = inp.prices.get(position.symbol, position.entry_price)
        info = inp.markets.get(position.symbol)
        existing += position.quantity * (contract_size(info) if info else D(1)) * price
    spent = D(0)
    notional_total = D(0)
    for outcome in opens:
        order = outcome.order
        assert order is not None
        action = next(x for x in inp.actions if x.symbol == outcome.symbol)
        info, price = inp.markets[order.symbol], inp.prices[order.symbol]
        assert order.symbol in inp.allowed_symbols and order.symbol not in held
        assert order.reference_price == price
        # Leverage: within the limit, 1x on spot, never more than asked (unless asked below 1x).
        assert 1 <= order.leverage <= lim.max_leverage
        assert info.contract or order.leverage == 1
        assert order.leverage <= max(action.leverage, D(1))
        # Side: shorts only on contracts.
        assert order.side == ("long" if action.action == "open_long" else "short")
        assert info.contract or order.side == "long"
        # Size: within the position limit and never more than asked.
        assert 0 < order.margin <= lim.max_position_pct / 100 * a.equity
        assert order.margin <= action.size_pct / 100 * a.equity
        # Precision and minimums.
        assert order.quantity > 0 and order.quantity % info.amount_step == 0
        assert order.quantity >= info.min_amount
        notional = order.quantity * contract_size(info) * price
        assert notional >= info.min_notional
        assert order.margin * order.leverage <= notional < (order.margin + D("1e-12")) * order.leverage
        # Stops on the right side, on the tick.
        for level, below in ((order.stop_loss, order.side == "long"), (order.take_profit, order.side == "short")):
            if level is not None:
                assert level % info.price_step == 0
                assert level < price if below else level > price
        spent += order.margin + notional * fee_rate
        notional_total += notional
    assert spent <= a.cash
    if opens:
        assert existing + notional_total <= lim.max_exposure_pct / 100 * a.equity


wild = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True),
    st.sampled_from([D(0), D(-1), D("1e999999"), D("-1e999999"), D("1e-999999"), D("sNaN"), D("NaN")]),
)


@settings(max_examples=400, deadline=None)
@given(
    base=risk_inputs(),
    equity=wild,
    cash=wild,
    price=wild,
    size=wild,
    leverage=wild,
    stop=wild,
    limit=wild,
    step=wild,
)
def test_never_raises_for_any_numbers(
    base: RiskInput,
    equity: Decimal,
    cash: Decimal,
    price: Decimal,
    size: Decimal,
    leverage: Decimal,
    stop: Decimal,
    limit: Decimal,
    step: Decimal,
) -> None:
    inp = replace(
        base,
        account=replace(base.account, equity=equity, cash=cash),
        limits=replace(base.limits, max_leverage=limit),
        prices={**base.prices, "BTC/USDT": price},
        markets={**base.markets, "BTC/USDT": replace(base.markets["BTC/USDT"], amount_step=step)},
        actions=[
            *base.actions,
            ProposedAction(symbol="BTC/USDT", action="open_long", size_pct=size, leverage=leverage, stop_loss=stop),
        ],
    )
    result = evaluate(inp)
    assert len(result.outcomes) == len(inp.actions)
    for outcome in result.outcomes:
        assert outcome.reasons and all(isinstance(r, str) and r for r in outcome.reasons)
        if outcome.order is not None:
            assert outcome.order.quantity.is_finite() and outcome.order.quantity > 0
