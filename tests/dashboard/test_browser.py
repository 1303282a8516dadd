"""A real browser (Debian's Chromium through Playwright) against the running platform: log in,
start a bot, see its trade appear live without a reload, then stop it through the confirmation."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bots.models import Bot
from tests.api.conftest import make_bot
from tests.realtime.servers import running_platform

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        shutil.which(CHROMIUM) is None,
        reason=f"{CHROMIUM} is not installed (apt-get install chromium; `make test` does)",
    ),
]


def test_log_in_start_a_bot_and_see_its_trade_live(user):
    from playwright.sync_api import expect, sync_playwright

    bot = make_bot(owner=user, name="live-demo")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    with running_platform() as platform, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
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
            expect(page.locator("#trades-table tr[data-fill-id]")).to_have_count(1, timeout=45000)
            expect(page.locator("#trades-table tr[data-fill-id] td").nth(2)).to_have_text("buy")
            expect(page.locator("#toasts .toast.trade")).to_contain_text("BUY")
            expect(page.locator("#trades-table tr[data-fill-id] td").nth(3)).to_have_text("open")
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
            # The exit is marked on the price chart too: the chart fetched the stop's candle.
            page.screenshot(path=str(SCREENSHOTS / "bot_stopped.png"), full_page=True)

            page.click("text=Bots")
            expect(page.locator(f'#bots-table tr[data-bot-id="{bot.pk}"] [data-field="status"]')).to_have_text(
                "stopped"
            )
            page.screenshot(path=str(SCREENSHOTS / "bots_list.png"), full_page=True)
            page.click("text=Leaderboard")
            expect(page.locator("#leaderboard-table")).to_contain_text("live-demo")
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

    bot = make_bot(owner=user, name="given-away")

    with running_platform(beat=False) as platform, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
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
            # (the backoff would have tried 3 times in these 4 seconds).
            in_thread(lambda: Bot.objects.filter(pk=bot.pk).update(owner=other_user))
            page.evaluate("window.__sockets.at(-1).close()")
            expect(page.locator("body")).to_have_attribute("data-stream-state", "refused", timeout=10000)
            page.wait_for_timeout(4000)
            assert page.evaluate("window.__sockets.length") == 2

            # Logged out (the session is gone): 4401 on the next connection leads to the login page.
            page.goto(f"{platform.http}/")
            expect(page.locator("body")).to_have_attribute("data-stream-state", "open", timeout=15000)
            in_thread(lambda: Session.objects.all().delete())
            page.evaluate("window.__sockets.at(-1).close()")
            page.wait_for_url("**/login/?next=%2F", timeout=10000)
        finally:
            browser.close()
