"""One error format for every failure, and no 500 for bad input."""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest

from tests.api.conftest import make_bot

pytestmark = pytest.mark.django_db


def test_unauthenticated(anon):
    response = anon.get("/api/bots/")

    assert response.status_code == 401
    assert response.json() == {
        "error": {
            "status": 401,
            "code": "not_authenticated",
            "message": "Authentication credentials were not provided.",
        }
    }


def test_unknown_object_and_unknown_path(api):
    assert api.get("/api/bots/999999999/").json()["error"]["code"] == "not_found"
    assert api.get("/api/bots/abc/").status_code == 404
    # Beyond the database's integer range: still a plain 404, not a server error.
    assert api.get(f"/api/bots/{2**70}/").status_code == 404
    unknown = api.get("/api/no-such-thing/")
    assert unknown.status_code == 404
    assert unknown.json() == {"error": {"status": 404, "code": "not_found", "message": "Not found."}}


def test_method_not_allowed(api, user):
    bot = make_bot(owner=user)

    response = api.get(f"/api/bots/{bot.pk}/start/")

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_malformed_bodies_are_400(api):
    broken = api.post("/api/bots/", "{not json", content_type="application/json")
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "parse_error"
    wrong_types = api.post(
        "/api/bots/", {"name": ["x"], "symbols": "BTC/USD", "starting_capital": {"a": 1}}, format="json"
    )
    assert wrong_types.status_code == 400
    assert {"name", "symbols", "starting_capital"} <= set(wrong_types.json()["error"]["fields"])
    listed = api.post("/api/bots/", [1, 2], format="json")
    assert listed.status_code == 400 and listed.json()["error"]["fields"]


def test_bad_filters_are_400(api):
    for query in ("bot=abc", f"bot={2**70}", "since=not-a-date", "side=both", "page_size=abc"):
        response = api.get(f"/api/orders/?{query}")
        assert response.status_code in (200, 400), (query, response.status_code)
        assert response.status_code == 200 if query == "page_size=abc" else response.status_code == 400


def test_a_filter_on_another_users_bot_is_400(api, other_user):
    foreign = make_bot(owner=other_user)

    response = api.get(f"/api/fills/?bot={foreign.pk}")

    assert response.status_code == 400 and "bot" in response.json()["error"]["fields"]


@pytest.mark.parametrize(
    "moment", ["1409-01-31T09:20:35+19:40", "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"]
)
def test_times_postgres_cannot_store_are_400(api, moment):
    """Found by the schema fuzzer: offsets beyond ±15:59 and years pushed out of range."""
    for resource in ("cycles", "orders", "fills", "positions", "alerts"):
        response = api.get(f"/api/{resource}/", {"since": moment})
        assert response.status_code in (200, 400), (resource, response.status_code)
    assert api.get("/api/orders/", {"since": "0001-01-01T00:00:00+05:00"}).status_code == 400


def test_offsets_are_converted_to_utc(api, traded_bot):
    from trading.models import Order

    created = Order.objects.get(bot=traded_bot).created_at
    just_before = created.astimezone(timezone(timedelta(hours=19, minutes=40))) - timedelta(seconds=1)

    assert api.get("/api/orders/", {"since": just_before.isoformat()}).json()["count"] == 1
