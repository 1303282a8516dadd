"""Dashboard pages through Django's test client: login, bots list, bot page, leaderboard, static."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client

from alerts.services import alert_raise
from tests.api.conftest import make_bot, traded

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_pages_need_a_login(client, user):
    bot = make_bot(owner=user)
    for path in ("/", f"/bots/{bot.pk}/", "/leaderboard/"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/login/?next=")


def test_login_with_email_then_logout(client, user):
    page = client.get("/login/")
    assert page.status_code == 200 and b"Email or username" in page.content

    wrong = client.post("/login/", {"username": "alice@example.com", "password": "nope"})
    assert wrong.status_code == 200 and b"Please enter a correct" in wrong.content

    response = client.post("/login/", {"username": "ALICE@example.com", "password": "pw-alice-123"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200
    client.post("/logout/")
    assert client.get("/").status_code == 302


def _auth_rate(settings, rate):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "auth": rate},
    }


def test_login_is_throttled_per_address_like_the_api(client, user, settings):
    _auth_rate(settings, "3/min")
    answers = [
        client.post(
            "/login/", {"username": "alice@example.com", "password": f"guess-{i}"}, HTTP_X_FORWARDED_FOR=f"10.0.0.{i}"
        ).status_code
        for i in range(3)
    ]
    assert answers == [200, 200, 200]  # the form again, with its error

    # Now even the right password is refused, with a clear page, and nobody is logged in.
    throttled = client.post("/login/", {"username": "alice@example.com", "password": "pw-alice-123"})
    assert throttled.status_code == 429 and int(throttled["Retry-After"]) >= 1
    page = throttled.content.decode()
    assert "Too many login attempts" in page and 'value="alice@example.com"' in page
    assert "Please enter a correct" not in page
    assert client.get("/").status_code == 302
    # The page itself still shows; the API's logins share the count of this address.
    assert client.get("/login/").status_code == 200
    api = client.post("/api/auth/token/", {"email": "alice@example.com", "password": "pw-alice-123"})
    assert api.status_code == 429


def test_api_login_attempts_count_for_the_login_page(client, user, settings):
    _auth_rate(settings, "2/min")
    for _ in range(2):
        client.post("/api/auth/token/", {"email": "alice@example.com", "password": "guess"})

    assert client.post("/login/", {"username": "alice@example.com", "password": "pw-alice-123"}).status_code == 429


def test_bots_page_lists_my_bots_with_equity_pnl_and_controls(browser, user, other_user):
    bot = traded(owner=user)
    make_bot(owner=other_user, name="not-mine")
    alert_raise(owner_id=user.pk, bot_id=bot.pk, kind="trade", message="bought 0.2 BTC")

    page = browser.get("/").content.decode()

    assert "trader" in page and "not-mine" not in page
    assert f'data-bot-id="{bot.pk}"' in page and 'data-command="stop"' in page
    assert "bought 0.2 BTC" in page
    rows = browser.get("/").context["rows"]
    assert rows[0]["pnl"] == rows[0]["account"].equity - Decimal(10000)
    assert "dashboard/js/bots.js" in page


def test_flower_link_only_when_configured(browser, settings):
    settings.FLOWER_URL = "http://flower.internal:5555/"
    assert 'href="http://flower.internal:5555/"' in browser.get("/").content.decode()
    settings.FLOWER_URL = ""
    assert "Flower" not in browser.get("/").content.decode()


def test_bot_page_and_ownership(browser, user, other_user):
    bot = traded(owner=user)
    foreign = make_bot(owner=other_user, name="foreign")

    page = browser.get(f"/bots/{bot.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    for anchor in (
        'id="price-chart"',
        'id="equity-chart"',
        'id="positions-table"',
        'id="trades-table"',
        'id="timeline"',
    ):
        assert anchor in html
    assert browser.get(f"/bots/{foreign.pk}/").status_code == 404


def test_leaderboard_page(browser, user):
    traded(owner=user, name="winner")
    make_bot(owner=user, name="idle", model="hold")

    html = browser.get("/leaderboard/").content.decode()

    assert "winner" in html and "idle" in html and "baseline" in html


@pytest.mark.parametrize(
    "path",
    [
        "/static/dashboard/js/bot.js",
        "/static/dashboard/js/stream.js",
        "/static/dashboard/dashboard.css",
        "/static/vendor/lightweight-charts/lightweight-charts.standalone.production.mjs",
    ],
)
def test_static_files_are_served_by_the_app(client, path):
    response = client.get(path)

    assert response.status_code == 200
    assert response["Content-Type"].split(";")[0] in ("text/javascript", "application/javascript", "text/css")


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal("10049.9412"), "10,049.94"),
        (Decimal("-6.661"), "-6.661000"),
        (Decimal("1.000231"), "1.000231"),
        ("x", "–"),
    ],
)
def test_money_format(value, shown):
    from dashboard.templatetags.money import money

    assert money(value) == shown
