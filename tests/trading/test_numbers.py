"""Decimals as text: `plain` for prompts and reasons, `money` for account amounts in messages."""

from __future__ import annotations

from decimal import Decimal

import pytest

from trading.numbers import money, plain


@pytest.mark.parametrize(
    ("value", "places", "text"),
    [
        (Decimal("3050.000000000000"), None, "3050"),
        (Decimal("0.000120"), None, "0.00012"),
        (Decimal("-0.000000000000"), None, "0"),
        (Decimal("1.23456789"), 4, "1.2346"),
        (Decimal("1E+40"), None, "1.000000e+40"),
    ],
)
def test_plain(value, places, text):
    assert plain(value, places=places) == text


@pytest.mark.parametrize(
    ("value", "currency", "text"),
    [
        (Decimal("1234.505000000000"), "USD", "1,234.51 USD"),
        (Decimal("-0.004"), "USDT", "0.00 USDT"),  # never "-0.00"
        (Decimal("-12.5"), "USD", "-12.50 USD"),
        (Decimal("0.000231449"), "BTC", "0.000231 BTC"),  # cents of a BTC account would read 0.00
        (Decimal("0E-12"), "ETH", "0.000000 ETH"),
    ],
)
def test_money(value, currency, text):
    assert money(value, currency=currency) == text
