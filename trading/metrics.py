"""Performance measures over plain values (pure: used by the cycle, the API and the leaderboard)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal

SECONDS_PER_YEAR = 365 * 24 * 3600


def returns(equities: Sequence[Decimal]) -> list[float]:
    """Simple returns between consecutive equity points (skipping non-positive equity)."""
    out: list[float] = []
    for prev, cur in zip(equities, equities[1:], strict=False):
        if prev > 0:
            out.append(float(cur / prev - 1))
    return out


def sharpe_ratio(equities: Sequence[Decimal], periods_per_year: float) -> Decimal | None:
    """Annualised Sharpe ratio (risk-free rate 0) of an equity series sampled every period.

    None until there are at least 3 returns or when returns do not vary (the ratio is undefined).
    """
    rets = returns(equities)
    if len(rets) < 3:
        return None
    mean = sum(rets) / len(rets)
    variance = sum((r - mean) ** 2 for r in rets) / (len(rets) - 1)
    std = math.sqrt(variance)
    if std < 1e-12:
        return None
    return Decimal(str(round(mean / std * math.sqrt(periods_per_year), 4)))


def max_drawdown_pct(equities: Sequence[Decimal]) -> Decimal:
    """Largest peak-to-trough fall of the series, in percent of the peak (0 for none)."""
    peak = Decimal(0)
    worst = Decimal(0)
    for equity in equities:
        if equity > peak:
            peak = equity
        if peak > 0:
            worst = max(worst, (peak - equity) / peak * 100)
    return worst.quantize(Decimal("0.0001"))


def win_rate(pnls: Sequence[Decimal]) -> Decimal | None:
    """Share of closed trades with a positive net PnL, in percent; None without trades."""
    if not pnls:
        return None
    wins = sum(1 for p in pnls if p > 0)
    return (Decimal(wins) / Decimal(len(pnls)) * 100).quantize(Decimal("0.01"))
