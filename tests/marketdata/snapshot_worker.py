"""Builds one snapshot in a fresh process and prints its data and hash (test_services runs it).

Usage: python -m tests.marketdata.snapshot_worker <feed name> <exchange> <timeframe> <slot ISO> <symbol>...
The feed is the replay feed under its own name, so this process fetches through its own cache keys.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from marketdata.feeds.replay import ReplayFeed
    from marketdata.services import snapshot_build

    name, exchange, timeframe, slot, *symbols = sys.argv[1:]

    feed = ReplayFeed(candle_seconds=15, warmup=200)
    feed.name = name
    snapshot = snapshot_build(
        exchange=exchange, symbols=symbols, timeframe=timeframe, slot=datetime.fromisoformat(slot), feed=feed
    )
    print(json.dumps({"hash": snapshot.hash, "data": json.dumps(snapshot.data)}))


if __name__ == "__main__":
    main()
