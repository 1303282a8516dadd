"""Dashboard pages through Django's test client: login, bots list, bot page, leaderboard, static."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.test import Client

from alerts.services import alert_raise
from tests.dashboard.conftest import small_price_bot
from tests.factories import BotFactory, traded

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_pages_need_a_login(client, user):
    bot = BotFactory(owner=user)
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
    BotFactory(owner=other_user, name="not-mine")
    alert_raise(owner_id=user.pk, bot_id=bot.pk, kind="trade", message="bought 0.2 BTC")

    page = browser.get("/").content.decode()

    assert "trader" in page and "not-mine" not in page
    assert f'data-bot-id="{bot.pk}"' in page and 'data-command="stop"' in page
    assert "bought 0.2 BTC" in page
    rows = browser.get("/").context["rows"]
    assert rows[0]["pnl"] == rows[0]["account"].equity - Decimal(10000)
    assert "dashboard/js/bots.js" in page


def test_flower_link_only_for_staff_and_when_configured(browser, user, settings):
    settings.FLOWER_URL = "http://flower.internal:5555/"
    # Flower controls the workers: not linked for an ordinary user.
    assert "Flower" not in browser.get("/").content.decode()
    user.is_staff = True
    user.save()
    assert 'href="http://flower.internal:5555/"' in browser.get("/").content.decode()
    settings.FLOWER_URL = ""
    assert "Flower" not in browser.get("/").content.decode()


def test_bot_page_and_ownership(browser, user, other_user):
    bot = traded(owner=user)
    foreign = BotFactory(owner=other_user, name="foreign")

    page = browser.get(f"/bots/{bot.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    for anchor in (
        'id="price-chart"',
        'id="equity-chart"',
        'id="positions-table"',
        'id="round-trips-table"',
        'id="timeline"',
    ):
        assert anchor in html
    assert browser.get(f"/bots/{foreign.pk}/").status_code == 404


def test_leaderboard_page(browser, user):
    traded(owner=user, name="winner")
    BotFactory(owner=user, name="idle", model="hold")

    html = browser.get("/leaderboard/").content.decode()

    assert "winner" in html and "baseline" in html
    # Never ranked: listed apart.
    ranked, _, apart = html.partition('id="not-started"')
    assert "idle" not in ranked.split('id="leaderboard-table"')[1] and "idle" in apart
    for anchor in ('id="arena-chart"', 'id="models-table"', 'id="analytics-table"'):
        assert anchor in html


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
    ("value", "quote", "shown"),
    [
        (Decimal("10049.9412"), "USD", "10,049.94"),
        (Decimal("-6.661"), "USD", "-6.66"),
        (Decimal("1111.2134"), "", "1,111.21"),
        (Decimal("0.125"), "USDT", "0.13"),  # half away from zero, as Intl.NumberFormat rounds
        (Decimal("-0.004"), "USD", "0.00"),  # never "-0.00"
        (Decimal("1.0002314"), "BTC", "1.000231"),  # an account in BTC moves in small numbers
        (Decimal("-0.0000001"), "BTC", "0.000000"),
        ("x", "USD", "–"),
        (None, "USD", "–"),
    ],
)
def test_money_format(value, quote, shown):
    from dashboard.templatetags.money import money

    assert money(value, quote) == shown


@pytest.mark.parametrize(
    ("value", "decimals", "shown"),
    [
        (Decimal("12.3456"), 2, "12.35%"),
        (Decimal("-0.0012"), 2, "0.00%"),
        (Decimal("-0.04"), 1, "0.0%"),
        (Decimal("-1.25"), 1, "-1.3%"),
        (None, 2, "–"),
    ],
)
def test_pct_format(value, decimals, shown):
    from dashboard.templatetags.money import pct

    assert pct(value, decimals) == shown


@pytest.mark.parametrize(
    ("price", "decimals"),
    [
        (Decimal("95000.5"), 2),
        (Decimal("2.4567"), 3),
        (Decimal("0.0312"), 5),
        (Decimal("0.031200000000"), 5),  # as the database stores it
        (Decimal("0.00005804"), 8),
        (Decimal("0.00000812"), 8),
        (Decimal(0), 2),
    ],
)
def test_price_decimals_show_at_least_4_significant_digits(price, decimals):
    from dashboard.templatetags.money import price_decimals

    assert price_decimals(price) == decimals


def test_bot_page_gives_the_chart_the_markets_price_decimals(browser, user):
    usd = traded(owner=user)
    ada = small_price_bot(owner=user)

    assert re.search(
        r'<option value="BTC/USD" data-price-decimals="2">', browser.get(f"/bots/{usd.pk}/").content.decode()
    )
    html = browser.get(f"/bots/{ada.pk}/").content.decode()
    assert re.search(r'<option value="ADA/BTC" data-price-decimals="8">', html)
    # Its account is in BTC: 6 decimals, not 2 (which would show 100.00 whatever it did).
    equity = re.search(r'data-stat="equity">([^<]*)<', html)
    assert equity and re.fullmatch(r"\d+\.\d{6}", equity.group(1))


def test_bot_page_without_candles_lets_the_page_derive_the_decimals(browser, user):
    bot = BotFactory(owner=user)

    html = browser.get(f"/bots/{bot.pk}/").content.decode()

    assert '<option value="BTC/USD">' in html


def _placeholder(html: str, chart: str) -> str:
    match = re.search(rf'<p class="chart-empty muted" id="{chart}-empty"([^>]*)>No data yet</p>', html)
    assert match, f"no placeholder in #{chart}"
    return match.group(1)


def test_charts_say_no_data_yet_until_they_have_some(browser, user):
    idle = BotFactory(owner=user, name="idle")

    html = browser.get(f"/bots/{idle.pk}/").content.decode()
    assert "hidden" not in _placeholder(html, "price-chart")
    assert "hidden" not in _placeholder(html, "equity-chart")

    bot = traded(owner=user)  # stores its market's candles: the idle bot's market too
    html = browser.get(f"/bots/{bot.pk}/").content.decode()
    assert "hidden" in _placeholder(html, "price-chart")
    assert "hidden" in _placeholder(html, "equity-chart")
    html = browser.get(f"/bots/{idle.pk}/").content.decode()
    assert "hidden" in _placeholder(html, "price-chart")
    assert "hidden" not in _placeholder(html, "equity-chart")


def test_trades_are_labelled_closed_trades_on_the_bot_page_and_the_leaderboard(browser, user):
    bot = traded(owner=user)

    for html in (browser.get(f"/bots/{bot.pk}/").content.decode(), browser.get("/leaderboard/").content.decode()):
        assert "Closed trades" in html and "Round trips" in html
        assert ">Trades<" not in html


def test_amounts_and_percentages_have_2_decimals_on_every_page(browser, user):
    traded(owner=user)

    bots = browser.get("/").content.decode()
    for field in ("equity", "pnl"):
        cell = re.search(rf'data-field="{field}">([^<]*)<', bots)
        assert cell and re.fullmatch(r"-?\d{1,3}(,\d{3})*\.\d{2}", cell.group(1)), cell

    board = browser.get("/leaderboard/").content.decode()
    row = re.search(r"<tr data-bot-id=.*?</tr>", board, re.S)
    assert row
    cells = [re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r'<td class="num[^"]*">(.*?)</td>', row.group(0))]
    ret, sharpe, drawdown, excess, net_pnl, llm_cost, periods, trades, win_rate, invalid = cells
    assert re.fullmatch(r"-?\d+\.\d{2}%", ret) and ret != "-0.00%"
    # With its unit: bots in different currencies share the table; the LLM bill is in dollars.
    assert re.fullmatch(r"-?\d{1,3}(,\d{3})*\.\d{2} USD", net_pnl)
    assert llm_cost == "0.0000 USD"
    assert sharpe == "–" or re.fullmatch(r"-?\d+\.\d{2}", sharpe)
    assert re.fullmatch(r"\d+\.\d{2}%", drawdown) and re.fullmatch(r"-?\d+\.\d{2}%", excess)
    assert re.fullmatch(r"1 × 1h", periods)
    assert win_rate == "–" and trades == "0"


def test_every_page_links_a_favicon_and_favicon_ico_finds_it(client, browser):
    for page in (client.get("/login/"), browser.get("/")):
        assert '<link rel="icon" href="/static/dashboard/favicon.svg" type="image/svg+xml">' in page.content.decode()

    redirect = client.get("/favicon.ico")
    assert redirect.status_code == 302 and redirect["Location"] == "/static/dashboard/favicon.svg"
    icon = client.get(redirect["Location"])
    assert icon.status_code == 200 and icon["Content-Type"].startswith("image/svg+xml")
    assert b"<svg" in b"".join(icon.streaming_content)
