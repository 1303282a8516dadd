"""Paper-trading maths, checked against numbers worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from marketdata.types import CandleData, MarketInfo
from trading import paper

D = Decimal
BTC = MarketInfo(
    symbol="BTC/USDT:USDT", base="BTC", quote="USDT", amount_step=D("0.001"), price_step=D("0.1"), contract=True
)
ETH = MarketInfo(
    symbol="ETH/USDT:USDT", base="ETH", quote="USDT", amount_step=D("0.01"), price_step=D("0.01"), contract=True
)
FEE_BPS = D(5)
SLIPPAGE_BPS = D(2)


def candle(open_: str, high: str, low: str, close: str) -> CandleData:
    return CandleData(
        open_time=datetime(2024, 5, 1, 12, tzinfo=UTC),
        open=D(open_),
        high=D(high),
        low=D(low),
        close=D(close),
        volume=D(10),
    )


# --- Fill prices and fees ------------------------------------------------------------------------


def test_slippage_is_adverse_and_rounded_against_the_trader() -> None:
    # 50,000.03 x 1.0002 = 50,010.030006 -> up to the tick: 50,010.1.
    assert paper.fill_price(side="buy", reference=D("50000.03"), slippage_bps=SLIPPAGE_BPS, info=BTC) == D("50010.1")
    # 50,000.03 x 0.9998 = 49,990.029994 -> down to the tick: 49,990.0.
    assert paper.fill_price(side="sell", reference=D("50000.03"), slippage_bps=SLIPPAGE_BPS, info=BTC) == D("49990.0")
    # No slippage, price on the tick: unchanged.
    assert paper.fill_price(side="buy", reference=D(50000), slippage_bps=D(0), info=BTC) == D("50000.0")


def test_fee() -> None:
    assert paper.fee(notional=D(1000), fee_bps=FEE_BPS) == D("0.5")
    assert paper.fee(notional=D(-1000), fee_bps=FEE_BPS) == D("0.5")
    assert paper.fee(notional=D("3.333333"), fee_bps=D(10)) == D("0.003333333000")
    with pytest.raises(ValueError):
        paper.fee(notional=D(1), fee_bps=D(-1))


# --- Whole trades --------------------------------------------------------------------------------


def test_long_round_trip_with_fees_and_slippage() -> None:
    entry = paper.fill_price(side="buy", reference=D(50000), slippage_bps=SLIPPAGE_BPS, info=BTC)
    assert entry == D("50010.0")  # 50,000 x 1.0002
    costs = paper.open_position_costs(side="long", quantity=D("0.1"), price=entry, leverage=D(2), fee_bps=FEE_BPS)
    assert costs.notional == D("5001.0")
    assert costs.margin == D("2500.5")  # 5,001 / 2
    assert costs.fee == D("2.5005")  # 5 bps of 5,001
    assert costs.cash_required == D("2503.0005")
    # 50,010 x (1 - 1/2) / (1 - 0.005) = 25,005 / 0.995
    assert costs.liquidation_price == D("25130.653266331658")

    exit_price = paper.fill_price(side="sell", reference=D(55000), slippage_bps=SLIPPAGE_BPS, info=BTC)
    assert exit_price == D("54989.0")  # 55,000 x 0.9998
    assert paper.unrealized_pnl(side="long", quantity=D("0.1"), entry=entry, price=exit_price) == D("497.9")
    result = paper.close_position_result(
        side="long", quantity=D("0.1"), entry=entry, exit_price=exit_price, margin=costs.margin, fee_bps=FEE_BPS
    )
    assert result.realized_pnl == D("497.9")  # (54,989 - 50,010) x 0.1
    assert result.fee == D("2.74945")  # 5 bps of 5,498.9
    assert result.cash_returned == D("2995.65055")  # 2,500.5 + 497.9 - 2.74945
    # Net of both fees: 497.9 - 2.5005 - 2.74945.
    assert result.realized_pnl - costs.fee - result.fee == D("492.65005")


def test_short_round_trip_with_fees_and_slippage() -> None:
    entry = paper.fill_price(side="sell", reference=D(2000), slippage_bps=SLIPPAGE_BPS, info=ETH)
    assert entry == D("1999.60")  # 2,000 x 0.9998
    costs = paper.open_position_costs(side="short", quantity=D(2), price=entry, leverage=D(5), fee_bps=FEE_BPS)
    assert (costs.notional, costs.margin, costs.fee) == (D("3999.2"), D("799.84"), D("1.9996"))
    # 1,999.6 x (1 + 1/5) / (1 + 0.005) = 2,399.52 / 1.005
    assert costs.liquidation_price == D("2387.582089552239")

    exit_price = paper.fill_price(side="buy", reference=D(1900), slippage_bps=SLIPPAGE_BPS, info=ETH)
    assert exit_price == D("1900.38")  # 1,900 x 1.0002
    result = paper.close_position_result(
        side="short", quantity=D(2), entry=entry, exit_price=exit_price, margin=costs.margin, fee_bps=FEE_BPS
    )
    assert result.realized_pnl == D("198.44")  # (1,999.6 - 1,900.38) x 2
    assert result.fee == D("1.90038")  # 5 bps of 3,800.76
    assert result.cash_returned == D("996.37962")  # 799.84 + 198.44 - 1.90038


def test_losing_short() -> None:
    result = paper.close_position_result(
        side="short", quantity=D(2), entry=D(2000), exit_price=D(2100), margin=D(800), fee_bps=FEE_BPS
    )
    assert result.realized_pnl == D(-200)
    assert result.fee == D("2.1")  # 5 bps of 4,200
    assert result.cash_returned == D("597.9")


def test_liquidation_loses_the_margin() -> None:
    # Long 0.1 BTC at 50,000 with 10x: margin 500; liquidation at 50,000 x 0.9 / 0.995.
    liquidation = paper.liquidation_price(side="long", entry=D(50000), leverage=D(10))
    assert liquidation == D("45226.130653266332")
    hit = paper.exit_trigger(
        side="long",
        stop_loss=None,
        take_profit=None,
        liquidation=liquidation,
        candle=candle("46000", "46100", "45000", "45100"),
    )
    assert hit == ("liquidation", liquidation)
    result = paper.close_position_result(
        side="long",
        quantity=D("0.1"),
        entry=D(50000),
        exit_price=liquidation,
        margin=D(500),
        fee_bps=FEE_BPS,
        liquidation=True,
    )
    # (45,226.13... - 50,000) x 0.1 = -477.39 (to 12 places); the rest of the margin (the maintenance margin,
    # 0.5% of the notional at the liquidation price) goes to the exchange: nothing comes back.
    assert result.realized_pnl == D("-477.386934673367")
    assert result.fee == D("22.613065326633")
    assert result.cash_returned == 0
    assert result.fee == (D("0.005") * liquidation * D("0.1")).quantize(D("1e-12"))


def test_a_gap_past_bankruptcy_loses_the_margin_and_no_more() -> None:
    result = paper.close_position_result(
        side="long", quantity=D("0.1"), entry=D(50000), exit_price=D(44000), margin=D(500), fee_bps=FEE_BPS
    )
    # (44,000 - 50,000) x 0.1 = -600, but isolated margin caps the loss at the 500 margin.
    assert (result.realized_pnl, result.fee, result.cash_returned) == (D(-500), D(0), D(0))
    # Just short of bankruptcy: the fee takes only what is left.
    almost = paper.close_position_result(
        side="long", quantity=D("0.1"), entry=D(50000), exit_price=D(45001), margin=D(500), fee_bps=FEE_BPS
    )
    assert (almost.realized_pnl, almost.fee, almost.cash_returned) == (D("-499.9"), D("0.1"), D(0))


def test_liquidation_price_edges() -> None:
    assert paper.liquidation_price(side="long", entry=D(50000), leverage=D(1)) is None  # fully paid
    # A 1x short is liquidated when the price about doubles: 50,000 x 2 / 1.005.
    assert paper.liquidation_price(side="short", entry=D(50000), leverage=D(1)) == D("99502.487562189055")
    assert paper.liquidation_price(side="long", entry=D(100), leverage=D(4), maintenance_margin_rate=D(0)) == D(75)
    with pytest.raises(ValueError):
        paper.liquidation_price(side="long", entry=D(100), leverage=D(0))
    with pytest.raises(ValueError):
        paper.liquidation_price(side="buy", entry=D(100), leverage=D(2))


def test_unrealized_pnl_and_position_value() -> None:
    assert paper.unrealized_pnl(side="long", quantity=D("0.5"), entry=D(100), price=D(110)) == D(5)
    assert paper.unrealized_pnl(side="short", quantity=D("0.5"), entry=D(100), price=D(110)) == D(-5)
    assert paper.position_value(side="long", quantity=D(1), entry=D(100), price=D(90), margin=D(20)) == D(10)
    assert paper.position_value(side="long", quantity=D(1), entry=D(100), price=D(70), margin=D(20)) == D(0)


# --- Stop-loss, take-profit and liquidation triggers ---------------------------------------------


def long_exit(
    c: CandleData, stop: str | None = "49000", target: str | None = "52000", liq: str | None = None
) -> object:
    return paper.exit_trigger(
        side="long",
        stop_loss=D(stop) if stop else None,
        take_profit=D(target) if target else None,
        liquidation=D(liq) if liq else None,
        candle=c,
    )


def short_exit(c: CandleData, stop: str | None = "2100", target: str | None = "1900", liq: str | None = None) -> object:
    return paper.exit_trigger(
        side="short",
        stop_loss=D(stop) if stop else None,
        take_profit=D(target) if target else None,
        liquidation=D(liq) if liq else None,
        candle=c,
    )


def test_no_level_crossed() -> None:
    assert long_exit(candle("50000", "51000", "49500", "50500")) is None
    assert short_exit(candle("2000", "2050", "1950", "2010")) is None
    assert long_exit(candle("50000", "60000", "40000", "50000"), stop=None, target=None) is None


def test_stop_and_target_inside_a_candle_fill_at_the_level() -> None:
    assert long_exit(candle("50000", "50500", "48900", "49100")) == ("stop_loss", D(49000))
    assert long_exit(candle("50000", "52100", "49900", "52000")) == ("take_profit", D(52000))
    assert short_exit(candle("2000", "2110", "1990", "2100")) == ("stop_loss", D(2100))
    assert short_exit(candle("2000", "2010", "1890", "1900")) == ("take_profit", D(1900))


def test_both_levels_in_one_candle_assume_the_stop_first() -> None:
    assert long_exit(candle("50000", "52500", "48500", "51000")) == ("stop_loss", D(49000))
    assert short_exit(candle("2000", "2200", "1800", "2000")) == ("stop_loss", D(2100))


def test_gap_through_the_stop_fills_at_the_worse_open() -> None:
    assert long_exit(candle("48000", "48500", "47500", "48200")) == ("stop_loss", D(48000))
    assert short_exit(candle("2150", "2160", "2140", "2150")) == ("stop_loss", D(2150))


def test_gap_through_the_target_fills_at_the_target_not_the_better_open() -> None:
    assert long_exit(candle("53000", "53500", "52800", "53100")) == ("take_profit", D(52000))
    assert short_exit(candle("1850", "1860", "1840", "1850")) == ("take_profit", D(1900))


def test_liquidation_against_the_stop() -> None:
    # Valid long: the stop (47,000) sits above the liquidation (45,226): the stop is hit first.
    assert long_exit(candle("50000", "50100", "44000", "44500"), stop="47000", liq="45226") == ("stop_loss", D(47000))
    # A stop beyond the liquidation level: liquidation comes first.
    assert long_exit(candle("50000", "50100", "43000", "43500"), stop="44000", liq="45226") == ("liquidation", D(45226))
    # Gapping through both: liquidation, at the open.
    assert long_exit(candle("44000", "44100", "43000", "43500"), stop="47000", liq="45226") == ("liquidation", D(44000))
    # Gapping through the stop but not the liquidation: the stop, at the open.
    assert long_exit(candle("46000", "46100", "45500", "45800"), stop="47000", liq="45226") == ("stop_loss", D(46000))
    # Short: liquidation above the stop is the valid order.
    assert short_exit(candle("2000", "2500", "1990", "2400"), stop="2100", liq="2387") == ("stop_loss", D(2100))
    assert short_exit(candle("2000", "2500", "1990", "2400"), stop="2450", liq="2387") == ("liquidation", D(2387))
    assert short_exit(candle("2400", "2500", "2390", "2450"), stop="2100", liq="2387") == ("liquidation", D(2400))


def test_sides_are_validated() -> None:
    with pytest.raises(ValueError):
        paper.fill_price(side="long", reference=D(1), slippage_bps=D(0), info=BTC)
    with pytest.raises(ValueError):
        paper.exit_trigger(
            side="buy", stop_loss=None, take_profit=None, liquidation=None, candle=candle("1", "1", "1", "1")
        )
