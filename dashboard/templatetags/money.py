"""Numbers as a trader reads them, exactly as the pages' JS shows them (ui.js: fmtMoney, fmtPct,
fmtPrice, priceDecimals), so a value looks the same before and after a live update.

- money: thousands separators, 2 decimals, or 6 in an account kept in a crypto currency (1.000231 BTC);
- percentages: 2 decimals (or the given number);
- prices: the market's decimals (`price_decimals` of its last price: at least 4 significant digits);
- never "-0.00": an amount that rounds to zero is zero.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import template

from trading.numbers import fixed, money_decimals

register = template.Library()

DASH = "–"
MIN_PRICE_DECIMALS = 2
MAX_PRICE_DECIMALS = 8  # a satoshi


def _decimal(value: object) -> Decimal | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def price_decimals(value: object) -> int:
    """Decimals that show at least 4 significant digits of a price, 2 to 8: 95000 → 2, 0.0312 → 5."""
    number = _decimal(value)
    if number is None or number == 0:
        return MIN_PRICE_DECIMALS
    return min(MAX_PRICE_DECIMALS, max(MIN_PRICE_DECIMALS, 3 - number.adjusted()))


@register.filter
def money(value: object, quote: str = "") -> str:
    """10,049.94 for 10049.9412 (USD); 1.000231 for 1.0002314 in a BTC account."""
    number = _decimal(value)
    return DASH if number is None else fixed(number, money_decimals(quote))


@register.filter
def pct(value: object, decimals: int = 2) -> str:
    """-1.23% for -1.2345; 0.00% for -0.001."""
    number = _decimal(value)
    return DASH if number is None else f"{fixed(number, int(decimals))}%"


@register.filter
def number(value: object, decimals: int = 2) -> str:
    """A plain figure (a Sharpe ratio): 1,234.57 for 1234.5678."""
    parsed = _decimal(value)
    return DASH if parsed is None else fixed(parsed, int(decimals))
