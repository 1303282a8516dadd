from __future__ import annotations

from django.contrib import admin

from marketdata.models import Candle


@admin.register(Candle)
class CandleAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Recorded candles: read-only, they are the record of what the feeds returned."""

    list_display = ("open_time", "exchange", "symbol", "timeframe", "open", "high", "low", "close", "volume")
    list_filter = ("exchange", "symbol", "timeframe")
    search_fields = ("symbol",)
    date_hierarchy = "open_time"
    ordering = ("-open_time",)
    readonly_fields = ("exchange", "symbol", "timeframe", "open_time", "open", "high", "low", "close", "volume")
    # The changelist's COUNT(*) over millions of candles is slow; show "more" instead of a total.
    show_full_result_count = False
    list_per_page = 100

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: Candle | None = None) -> bool:
        # Viewable (the change view renders read-only), never editable.
        return False
