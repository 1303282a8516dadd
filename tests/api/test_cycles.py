"""Cycles API: the timeline (paginated, filtered) and a cycle's full record."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bots.models import Cycle
from tests.factories import SLOT, traded

pytestmark = pytest.mark.django_db


def test_timeline_lists_the_models_conclusions_without_the_heavy_payloads(api, traded_bot):
    cycle = traded_bot.cycles.get()

    rows = api.get(f"/api/cycles/?bot={traded_bot.pk}").json()["results"]

    assert [r["id"] for r in rows] == [cycle.pk]
    row = rows[0]
    assert row["status"] == "completed" and row["market_summary"].startswith("buy and hold")
    assert row["actions"][0]["action"] == "open_long" and row["actions"][0]["symbol"] == "BTC/USD"
    assert row["actions"][0]["confidence"] == 0.5 and row["actions"][0]["reasoning"]
    assert "prompt" not in row and "snapshot" not in row and "raw_output" not in row


def test_detail_has_everything_the_cycle_saw_said_and_did(api, traded_bot):
    cycle = traded_bot.cycles.get()

    detail = api.get(f"/api/cycles/{cycle.pk}/").json()

    assert detail["snapshot"] == cycle.snapshot and detail["snapshot_hash"] == cycle.snapshot_hash
    assert detail["prompt"] == cycle.prompt and detail["raw_output"] == cycle.raw_output
    assert detail["decision"] == cycle.decision and detail["risk"] == cycle.risk
    assert detail["timings"] == cycle.timings and "decision" in detail["timings"]
    assert detail["orders"][0]["intent"] == "open" and detail["orders"][0]["status"] == "filled"
    assert {"input_tokens", "output_tokens", "llm_cost", "llm_latency_ms", "llm_calls", "prompt_version"} <= set(detail)


def test_filters(api, user):
    bot = traded(owner=user)
    later = SLOT + timedelta(seconds=180)
    Cycle.objects.create(bot=bot, slot=later, started_at=later, status="failed", error="feed down")
    other = traded(owner=user, name="other")

    def ids(query: str) -> set[int]:
        response = api.get(f"/api/cycles/?{query}")
        assert response.status_code == 200, response.json()
        return {r["id"] for r in response.json()["results"]}

    failed = Cycle.objects.get(status="failed")
    assert ids(f"bot={bot.pk}") == set(bot.cycles.values_list("pk", flat=True))
    assert ids("status=failed") == {failed.pk}
    assert ids("has_error=true") == {failed.pk}
    assert failed.pk not in ids("has_error=false")
    assert ids(f"since={later.isoformat().replace('+00:00', 'Z')}") == {failed.pk}
    assert ids(f"until={later.isoformat().replace('+00:00', 'Z')}") == {
        bot.cycles.get(slot=SLOT).pk,
        other.cycles.get().pk,
    }
    assert ids("kind=protect") == set()
    assert api.get("/api/cycles/?status=exploded").status_code == 400
