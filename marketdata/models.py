from __future__ import annotations

from django.db import models


class Candle(models.Model):
    """One OHLCV candle of one market, as an exchange reported it (open time in UTC)."""

    exchange = models.CharField(max_length=32, help_text="ccxt exchange id")
    symbol = models.CharField(max_length=40, help_text="ccxt unified symbol, e.g. BTC/USD")
    timeframe = models.CharField(max_length=8)
    open_time = models.DateTimeField()
    open = models.DecimalField(max_digits=30, decimal_places=12)
    high = models.DecimalField(max_digits=30, decimal_places=12)
    low = models.DecimalField(max_digits=30, decimal_places=12)
    close = models.DecimalField(max_digits=30, decimal_places=12)
    volume = models.DecimalField(max_digits=36, decimal_places=12)

    class Meta:
        constraints = [
            # Upserts (bulk_create update_conflicts) and range reads key on this.
            models.UniqueConstraint(fields=["exchange", "symbol", "timeframe", "open_time"], name="uniq_candle")
        ]
        ordering = ["exchange", "symbol", "timeframe", "open_time"]

    def __str__(self) -> str:
        return f"{self.exchange} {self.symbol} {self.timeframe} {self.open_time:%Y-%m-%d %H:%M}"
