"""Decimals as text for people and prompts: plain digits, no exponent, no trailing zeros.

Amounts are stored with 12 decimal places (`trading.models`), so `str()` of a price read back is
`3050.000000000000`: noise in a risk reason, a toast or an LLM prompt (where it is also paid for).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# Accounts in these quote currencies move in small numbers: 0.01 BTC is hundreds of dollars.
CRYPTO_QUOTES = frozenset({"BTC", "XBT", "ETH", "BNB"})


def plain(value: object, *, places: int | None = None) -> str:
    """`Decimal("3050.000000000000")` → `3050`, `Decimal("0.000120")` → `0.00012`.

    `places` rounds first (half even), for amounts computed to more digits than anyone reads.
    Anything that is not a finite Decimal is shown as its repr, so a bad value is visible as such.
    """
    if not isinstance(value, Decimal) or not value.is_finite():
        return repr(value)
    if places is not None:
        try:
            value = value.quantize(Decimal(1).scaleb(-places))
        except InvalidOperation:
            pass  # more digits than the context holds: shown as it is
    if value and not -20 <= value.adjusted() <= 30:
        return f"{value:.6e}"  # absurd magnitudes stay readable (and short)
    try:
        text = format(value.normalize(), "f")
    except ArithmeticError:
        return str(value)
    return "0" if text == "-0" else text


def fixed(number: Decimal, decimals: int) -> str:
    """`number` rounded half away from zero (as the browser's Intl.NumberFormat does), with
    thousands separators; never "-0.00"."""
    rounded = number.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    if rounded == 0:
        rounded = abs(rounded)  # -0.001 is "0.00", not "-0.00"
    return f"{rounded:,.{decimals}f}"


def money_decimals(currency: str = "") -> int:
    """Places of an amount of an account's currency: cents, or 6 in a crypto currency (1.000231 BTC)."""
    return 6 if str(currency).upper() in CRYPTO_QUOTES else 2


def money(value: Decimal, *, currency: str) -> str:
    """An account amount for people (messages, alerts, the dashboard): `1,234.50 USD`, `0.000231 BTC`."""
    return f"{fixed(value, money_decimals(currency))} {currency}"
