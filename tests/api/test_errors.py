"""One error format for every failure, and no 500 for bad input."""

from __future__ import annotations

import http.client
import re
from datetime import timedelta, timezone

import pytest
from django.test import override_settings
from rest_framework_simplejwt.tokens import RefreshToken

from bots.models import Bot
from tests.factories import BotFactory
from tests.realtime.servers import Platform, running_platform

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


@override_settings(DEBUG=True)
def test_unknown_api_paths_are_json_under_debug_too(api):
    """Under DEBUG Django answers an unmatched path with its HTML page instead of handler404."""
    for path in ("/api/nope/", "/api/bots/1/nope/", "/api/auth/"):
        response = api.get(path)
        assert response.status_code == 404, path
        assert response.json() == {"error": {"status": 404, "code": "not_found", "message": "Not found."}}, path
    # Still redirected to the path with its slash (APPEND_SLASH), as outside DEBUG.
    redirect = api.get("/api/bots")
    assert redirect.status_code == 301 and redirect["Location"] == "/api/bots/"
    # A view's own 404 is left as it is, and outside /api/ Django's page stays.
    assert api.get("/api/bots/999999999/").json()["error"]["message"] == "No Bot matches the given query."
    assert api.get("/nope/")["Content-Type"].startswith("text/html")


@override_settings(DEBUG=True)
def test_an_api_write_without_its_slash_is_a_json_404_not_a_redirect(api, user):
    # Under DEBUG Django raises a RuntimeError (a 500) for a POST it would have to redirect; outside
    # DEBUG it redirects, and the client's GET loses the body. Both: a 404 that names the path.
    bot = BotFactory(owner=user)
    for method, path in (("post", "/api/bots"), ("patch", f"/api/bots/{bot.pk}"), ("delete", f"/api/bots/{bot.pk}")):
        response = getattr(api, method)(path, {"name": "x"}, format="json")
        assert response.status_code == 404, (method, path)
        assert response.json()["error"]["message"] == f"Not found. API paths end with a slash: {path}/"
    assert Bot.objects.filter(pk=bot.pk).exists()


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000, DATA_UPLOAD_MAX_NUMBER_FIELDS=10)
def test_request_limits_are_400_in_the_error_format(api):
    too_big = api.post("/api/bots/", {"name": "x" * 2000, "symbols": ["BTC/USD"]}, format="json")
    assert too_big.status_code == 400
    assert too_big.json()["error"]["message"] == "The request body is too large (at most 1000 bytes)."
    fields = "&".join(f"f{i}=1" for i in range(20))
    too_many = api.post("/api/bots/", fields, content_type="application/x-www-form-urlencoded")
    assert too_many.status_code == 400
    assert too_many.json()["error"]["message"] == "The request has too many fields (at most 10)."


def test_the_api_index_links_the_docs_and_every_collection(anon):
    response = anon.get("/api/")

    assert response.status_code == 200
    links = response.json()
    for name in ("schema", "docs", "redoc", "register", "token", "token_refresh", "bots", "alerts"):
        assert links[name].startswith("http://testserver/api/"), name
    # Open without authentication, like the docs; every link leads somewhere (405: POST only).
    for url in links.values():
        assert anon.get(url).status_code in (200, 401, 405), url
    # Every top-level path the schema documents is linked, so a new resource cannot be left out.
    documented = {
        path for path in anon.get("/api/schema/?format=json").json()["paths"] if re.fullmatch(r"/api/[^/]+/", path)
    }
    assert documented and documented <= {url.removeprefix("http://testserver") for url in links.values()}


def test_method_not_allowed(api, user):
    bot = BotFactory(owner=user)

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


@pytest.mark.parametrize("body", ["[" * 100_000, '{"a":' * 100_000], ids=["arrays", "objects"])
def test_json_nested_too_deeply_is_a_parse_error(api, anon, user, body, settings):
    """The JSON decoder recurses once per level: a deep enough body exhausted the stack (a 500)."""
    settings.ALLOW_REGISTRATION = True
    bot = BotFactory(owner=user)
    for client, method, path in (
        (anon, "post", "/api/auth/register/"),
        (anon, "post", "/api/auth/token/"),
        (anon, "post", "/api/auth/token/refresh/"),
        (api, "post", "/api/bots/"),
        (api, "patch", f"/api/bots/{bot.pk}/"),
    ):
        response = getattr(client, method)(path, body, content_type="application/json")

        assert response.status_code == 400, (path, response.status_code)
        error = response.json()["error"]
        assert error["code"] == "parse_error" and "nested too deeply" in error["message"], (path, error)


def _post(platform: Platform, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", platform.port, timeout=10)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_multipart_bodies_reach_django_through_daphne(user):
    """Twisted parsed multipart bodies itself, before Django: one it could not parse (no boundary)
    was answered with a bare `400 Bad Request` and no body, never in the API's error format."""
    token = str(RefreshToken.for_user(user).access_token)
    with running_platform(beat=False, worker=False) as platform:
        for path, headers in (("/api/bots/", {"Authorization": f"Bearer {token}"}), ("/api/auth/token/", {})):
            status, body = _post(platform, path, b"x", {**headers, "Content-Type": "multipart/form-data"})

            assert status == 400, (path, status, body)
            assert body.startswith(b'{"error":{"status":400,"code":"parse_error","message":"Multipart form parse'), body
        # A well-formed multipart body is still parsed (by Django now).
        form = (
            b'--b\r\nContent-Disposition: form-data; name="email"\r\n\r\nalice@example.com\r\n'
            b'--b\r\nContent-Disposition: form-data; name="password"\r\n\r\npw-alice-123\r\n--b--\r\n'
        )
        status, body = _post(platform, "/api/auth/token/", form, {"Content-Type": "multipart/form-data; boundary=b"})
        assert status == 200 and b'"access"' in body, (status, body)


def test_bad_filters_are_400(api):
    queries = ("bot=abc", f"bot={2**70}", "since=not-a-date", "side=both", "page_size=abc", "page_size=0", "page=1.5")
    for query in queries:
        response = api.get(f"/api/orders/?{query}")
        # Paging parameters too: a page size that is not a positive integer is refused, not ignored.
        assert response.status_code == 400, (query, response.status_code)


def test_a_filter_on_another_users_bot_is_400(api, other_user):
    foreign = BotFactory(owner=other_user)

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
