"""Amounts as a trader reads them: 2 decimals for dollars, more for small quote currencies (BTC)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import template
from django.template.defaultfilters import floatformat

register = template.Library()


@register.filter
def money(value: object) -> str:
    """10,049.94 for 10049.9412; 0.012346 for 0.0123456 (an account in BTC)."""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return "–"
    # Below 100 units two decimals hide the moves (1.00 BTC vs 1.000231 BTC).
    return str(floatformat(number, "2g" if abs(number) >= 100 else "6g"))
