"""A real browser (Debian's Chromium through Playwright) against the running platform: log in,
start a bot, see its trade appear live without a reload, then stop it through the confirmation;
the pages on a phone."""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from bots.cycle import run_cycle
from bots.models import Bot
from marketdata.feeds import get_feed
from tests.browser import launch, needs_chromium
from tests.dashboard.conftest import small_price_bot
from tests.factories import SLOT, BotFactory, store_candles, traded
from tests.realtime.servers import running_platform

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    needs_chromium,
]


def test_log_in_start_a_bot_and_see_its_trade_live(user):
    from playwright.sync_api import expect, sync_playwright

    bot = BotFactory(owner=user, name="live-demo")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    with running_platform() as platform, sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1500})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))

            page.goto(f"{platform.http}/login/")
            page.fill("#id_username", "alice@example.com")
            page.fill("#id_password", "pw-alice-123")
            page.click("#login-submit")
            expect(page.locator("#bots-table")).to_contain_text("live-demo")

            page.click("text=live-demo")
            expect(page.locator("body")).to_have_attribute("data-stream-state", "open", timeout=15000)
            expect(page.locator("body")).to_have_attribute("data-loaded", "true", timeout=15000)
            # A marker on the window: a reload would drop it.
            page.evaluate("window.__sameDocument = true")

            page.click('#bot .controls [data-command="start"]')
            expect(page.locator('#bot [data-field="status"]')).to_have_text("active")

            # Beat dispatches within a second; the worker trades; the stream brings it here.
            expect(page.locator("#toasts .toast.trade")).to_contain_text("BUY", timeout=45000)
            expect(page.locator("#positions-table tr[data-position-id]")).to_have_count(1, timeout=10000)
            # The figures follow: the entry's fee is counted, the position is marked to the price.
            expect(page.locator('[data-stat="fees"]')).not_to_have_text("0.00", timeout=10000)
            expect(page.locator("#positions-table tr[data-position-id] td").nth(4)).not_to_have_text("–")
            expect(page.locator("#timeline li[data-cycle-id]").first).to_contain_text("open long")
            page.locator("#timeline details summary").first.click()
            expect(page.locator("#timeline details pre").first).to_be_visible()
            assert page.evaluate("window.__sameDocument") is True
            page.screenshot(path=str(SCREENSHOTS / "bot_trade_live.png"), full_page=True)

            # Stop asks for confirmation, then closes the position and says so.
            page.click('#bot .controls [data-command="stop"]')
            expect(page.locator("#confirm-dialog")).to_be_visible()
            page.click("#confirm-ok")
            expect(page.locator('#bot [data-field="status"]')).to_have_text("stopped", timeout=20000)
            expect(page.locator("#toasts")).to_contain_text("1 position(s) closed")
            expect(page.locator("#positions-table tr[data-position-id]")).to_have_count(0, timeout=10000)
            # The position is now a round trip, closed by the stop command, with its thesis.
            trip = page.locator("#round-trips-table tr[data-position-id]")
            expect(trip).to_have_count(1, timeout=10000)
            expect(trip.locator('[data-field="exit_reason"]')).to_have_text("stop command")
            expect(trip.locator("td.thesis")).not_to_have_text("–")
            # The exit is marked on the price chart too: the chart fetched the stop's candle.
            page.screenshot(path=str(SCREENSHOTS / "bot_stopped.png"), full_page=True)

            page.click("text=Bots")
            expect(page.locator(f'#bots-table tr[data-bot-id="{bot.pk}"] [data-field="status"]')).to_have_text(
                "stopped"
            )
            page.screenshot(path=str(SCREENSHOTS / "bots_list.png"), full_page=True)
            page.click("text=Leaderboard")
            expect(page.locator("#leaderboard-table")).to_contain_text("live-demo")
            expect(page.locator("body")).to_have_attribute("data-loaded", "true", timeout=15000)
            expect(page.locator("#arena-legend")).to_contain_text("live-demo")
            page.screenshot(path=str(SCREENSHOTS / "leaderboard.png"), full_page=True)
            assert errors == []
        finally:
            browser.close()

    assert Bot.objects.get(pk=bot.pk).status == Bot.Status.STOPPED


# Keeps every WebSocket the page opens, so that a test can count them and drop one.
RECORD_SOCKETS = """
window.__sockets = [];
window.WebSocket = class extends window.WebSocket {
  constructor(...args) { super(...args); window.__sockets.push(this); }
};
"""


def in_thread(function: Callable[[], object]) -> None:
    """Run database code outside Playwright's event loop (Django refuses to run it in one)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(function).result()


def test_a_refused_stream_is_not_retried(user, other_user):
    from django.contrib.sessions.models import Session
    from playwright.sync_api import expect, sync_playwright

    bot = BotFactory(owner=user, name="given-away")

    with running_platform(beat=False) as platform, sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page()
            page.add_init_script(RECORD_SOCKETS)
            page.goto(f"{platform.http}/login/")
            page.fill("#id_username", "alice@example.com")
            page.fill("#id_password", "pw-alice-123")
            page.click("#login-submit")
            page.goto(f"{platform.http}/bots/{bot.pk}/")
            expect(page.locator("body")).to_have_attribute("data-stream-state", "open", timeout=15000)

            # No longer her bot: the next connection is refused with 4404, and never tried again
            # (the backoff would retry within 0.6 s, and at the latest 1.2 s after that: at least
            # twice in these 2 seconds).
            in_thread(lambda: Bot.objects.filter(pk=bot.pk).update(owner=other_user))
            page.evaluate("window.__sockets.at(-1).close()")
            expect(page.locator("body")).to_have_attribute("data-stream-state", "refused", timeout=10000)
            page.wait_for_timeout(2000)
            assert page.evaluate("window.__sockets.length") == 2

            # Logged out (the session is gone): 4401 on the next connection leads to the login page.
            page.goto(f"{platform.http}/")
            expect(page.locator("body")).to_have_attribute("data-stream-state", "open", timeout=15000)
            in_thread(lambda: Session.objects.all().delete())
            page.evaluate("window.__sockets.at(-1).close()")
            page.wait_for_url("**/login/?next=%2F", timeout=10000)
        finally:
            browser.close()


PHONE = {"width": 390, "height": 844}


def _no_horizontal_scroll(page: Any) -> None:
    assert page.evaluate("window.innerWidth") == PHONE["width"]
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow}px"


def test_pages_fit_a_phone_and_show_figures_as_the_server_rendered_them(user):
    """At 390 px wide: no page scrolls sideways (tables scroll in their card), prices use their
    market's decimals, the live figures read as the server's, and "No data yet" leaves with the data."""
    from playwright.sync_api import expect, sync_playwright

    traded(owner=user, name="a-bot-with-a-rather-long-name-for-a-phone")
    ada = small_price_bot(owner=user)
    # A market no test stored candles of yet; started, but without beat nothing runs its cycles.
    fresh = BotFactory(owner=user, name="fresh", exchange="binance", symbols=["ETH/BTC"], timeframe="5m", start=True)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    with running_platform(beat=False) as platform, sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            # Not `is_mobile`: a mobile viewport zooms out to show what overflows, which hides it.
            page = browser.new_page(viewport=PHONE)
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("console", lambda message: message.type == "error" and errors.append(message.text))
            page.goto(f"{platform.http}/login/")
            page.fill("#id_username", "alice@example.com")
            page.fill("#id_password", "pw-alice-123")
            page.click("#login-submit")

            def served(path: str, pattern: str) -> str:
                """A figure as the server rendered it, before any JS ran."""
                match = re.search(pattern, page.request.get(f"{platform.http}{path}").text())
                assert match, pattern
                return match.group(1)

            # The bots list: the figures its JS renders on connecting read as the server's.
            expect(page.locator("body")).to_have_attribute("data-loaded", "true", timeout=15000)
            for field in ("equity", "pnl"):
                server = served("/", rf'(?s)data-bot-id="{ada.pk}".*?data-field="{field}">([^<]*)<')
                assert re.fullmatch(r"-?\d+\.\d{6}", server)  # an account in BTC
                expect(page.locator(f'#bots-table tr[data-bot-id="{ada.pk}"] [data-field="{field}"]')).to_have_text(
                    server
                )
            _no_horizontal_scroll(page)
            page.screenshot(path=str(SCREENSHOTS / "phone_bots.png"), full_page=True)

            # A bot in ADA/BTC (0.000058): its prices with 8 decimals, its figures as served.
            page.goto(f"{platform.http}/bots/{ada.pk}/")
            expect(page.locator("body")).to_have_attribute("data-loaded", "true", timeout=15000)
            expect(page.locator("#positions-table tr[data-position-id] td").nth(3)).to_have_text("0.00005804")
            for stat in ("equity", "pnl"):
                expect(page.locator(f'[data-stat="{stat}"]')).to_have_text(
                    served(f"/bots/{ada.pk}/", rf'data-stat="{stat}"[^>]*>([^<]*)<')
                )
            expect(page.locator("#price-chart-empty")).to_be_hidden()
            expect(page.locator("#equity-chart-empty")).to_be_hidden()
            chart_width = page.evaluate("document.querySelector('#price-chart canvas').getBoundingClientRect().right")
            assert chart_width <= PHONE["width"]
            _no_horizontal_scroll(page)
            page.screenshot(path=str(SCREENSHOTS / "phone_bot.png"), full_page=True)

            page.goto(f"{platform.http}/leaderboard/")
            expect(page.locator("body")).to_have_attribute("data-loaded", "true", timeout=15000)
            served_row = served("/leaderboard/", rf'(?s)(<tr data-bot-id="{ada.pk}".*?</tr>)')
            served_cells = [
                re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r'<td class="num[^"]*">(.*?)</td>', served_row)
            ]
            shown_cells = page.locator(f'#leaderboard-table tr[data-bot-id="{ada.pk}"] td.num').all_text_contents()
            assert shown_cells == served_cells
            _no_horizontal_scroll(page)
            page.screenshot(path=str(SCREENSHOTS / "phone_leaderboard.png"), full_page=True)

            # Before its first cycle a bot's charts say so; its first cycle's events replace that.
            page.goto(f"{platform.http}/bots/{fresh.pk}/")
            expect(page.locator("body")).to_have_attribute("data-loaded", "true", timeout=15000)
            expect(page.locator("#price-chart-empty")).to_have_text("No data yet")
            expect(page.locator("#equity-chart-empty")).to_have_text("No data yet")
            page.evaluate("window.__sameDocument = true")

            def first_cycle() -> None:
                until = get_feed().market_time(exchange="binance", symbol="ETH/BTC", timeframe="5m", slot=SLOT)
                store_candles(bot=fresh, until=until)
                try:
                    assert run_cycle(bot_id=fresh.pk, slot=SLOT).status == "completed"
                finally:
                    connection.close()  # this thread's: it would keep the test database open

            in_thread(first_cycle)
            expect(page.locator("#price-chart-empty")).to_be_hidden(timeout=10000)
            expect(page.locator("#equity-chart-empty")).to_be_hidden()
            assert page.evaluate("window.__sameDocument") is True
            _no_horizontal_scroll(page)
            assert errors == []
        finally:
            browser.close()
