"""Market data feeds: `replay` (recorded CSV, the offline default) and `ccxt` (live public data)."""

from __future__ import annotations

import threading

from django.conf import settings

from marketdata.feeds.base import Feed

FEED_NAMES = ("replay", "ccxt")

_feeds: dict[str, Feed] = {}
_lock = threading.Lock()


def get_feed(name: str | None = None) -> Feed:
    """The process-wide feed instance `name` (default `settings.MARKET_DATA_FEED`)."""
    name = name or str(settings.MARKET_DATA_FEED)
    if name not in FEED_NAMES:
        raise ValueError(f"unknown market data feed {name!r}; choose one of {', '.join(FEED_NAMES)}")
    # One instance per process: the replay feed holds the parsed files, the ccxt feed its
    # exchange instances (and their rate limiters and loaded markets).
    with _lock:
        feed = _feeds.get(name)
        if feed is None:
            if name == "replay":
                from marketdata.feeds.replay import ReplayFeed

                feed = ReplayFeed()
            else:
                # Imported on demand: ccxt is large and the offline default never needs it.
                from marketdata.feeds.ccxt_feed import CcxtFeed

                feed = CcxtFeed()
            _feeds[name] = feed
        return feed


__all__ = ["FEED_NAMES", "Feed", "get_feed"]
