"""`manage.py backfill_candles`: pages through the feed into Candle; bad arguments fail cleanly."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from marketdata.models import Candle


@pytest.mark.django_db
def test_backfill_pages_through_the_replay_feed_and_is_idempotent() -> None:
    out = StringIO()
    args = ["--exchange", "coinbase", "--symbol", "BTC/USD", "--timeframe", "1h"]
    args += ["--since", "2019-10-01", "--until", "2019-10-05", "--feed", "replay", "--page-size", "10"]
    call_command("backfill_candles", *args, stdout=out, stderr=StringIO())
    rows = Candle.objects.filter(exchange="coinbase", symbol="BTC/USD", timeframe="1h").order_by("open_time")
    assert rows.count() == 96  # four days of hours, in ten-candle pages
    assert rows.first().open_time == datetime(2019, 10, 1, tzinfo=UTC)  # type: ignore[union-attr]
    assert rows.last().open_time == datetime(2019, 10, 4, 23, tzinfo=UTC)  # type: ignore[union-attr]
    assert "96 1h candles of BTC/USD on coinbase stored" in out.getvalue()

    call_command("backfill_candles", *args, stdout=StringIO(), stderr=StringIO())
    assert rows.count() == 96


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"--since": "2019-13-01"}, "--since must be a date as YYYY-MM-DD"),
        ({"--until": "2019-09-01"}, "must be before --until"),
        ({"--symbol": "DOGE/USD"}, "no 'DOGE/USD' on 'coinbase'"),
        ({"--exchange": "kraken"}, "has no such exchange"),
        ({"--timeframe": "4h"}, "no 4h candles for BTC/USD on coinbase (it has 1h)"),
        ({"--page-size": "0"}, "--page-size must be at least 1"),
    ],
)
def test_bad_arguments_raise_command_error(changes: dict[str, str], message: str) -> None:
    options = {
        "--exchange": "coinbase",
        "--symbol": "BTC/USD",
        "--timeframe": "1h",
        "--since": "2019-10-01",
        "--until": "2019-10-02",
        "--feed": "replay",
        **changes,
    }
    args = [part for pair in options.items() for part in pair]
    with pytest.raises(CommandError) as error:
        call_command("backfill_candles", *args, stdout=StringIO(), stderr=StringIO())
    assert message in str(error.value)
    assert not Candle.objects.exists()


@pytest.mark.slow
def test_bad_argument_on_the_command_line_exits_non_zero_without_traceback() -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    completed = subprocess.run(
        [sys.executable, "manage.py", "backfill_candles", "--exchange", "coinbase", "--symbol", "BTC/USD"]
        + ["--timeframe", "1h", "--since", "yesterday", "--feed", "replay"],
        cwd=str(settings.BASE_DIR),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode != 0
    assert "--since must be a date as YYYY-MM-DD, got 'yesterday'" in completed.stderr
    assert "Traceback" not in completed.stderr
