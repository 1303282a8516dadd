"""The Content-Security-Policy in a real browser (Debian's Chromium): every dashboard page, the
admin and the API docs load with no violation and no script error, the live stream connects, and
staff's Flower link opens; the account pages fit a phone."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from scripts.test_services import free_port
from tests.browser import launch, needs_chromium
from tests.factories import BotFactory
from tests.realtime.servers import running_platform

SCREENSHOTS = Path(__file__).resolve().parents[1] / "var" / "screenshots"

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True), needs_chromium]

# Every CSP violation of a document, as the browser reports it to the page.
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " " + e.sourceFile + ":" + e.lineNumber);
});
"""


@pytest.fixture
def fake_flower() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<!doctype html><title>Flower</title><h1 id='flower'>Flower</h1>"
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_every_page_loads_under_the_csp(fake_flower):
    from playwright.sync_api import expect, sync_playwright

    root = get_user_model().objects.create_superuser(username="root", email="root@example.com", password="pw-root-123")
    bot = BotFactory(owner=root, name="csp-bot")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    with running_platform(worker=False, beat=False, extra_env={"FLOWER_URL": fake_flower}) as platform, sync_playwright() as playwright:  # fmt: skip
        browser = launch(playwright)
        try:
            context = browser.new_context(viewport={"width": 1300, "height": 1000})
            context.add_init_script(RECORD_VIOLATIONS)
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}"))
            page.on(
                "console",
                lambda message: (
                    "Content Security Policy" in message.text and errors.append(f"{page.url}: {message.text}")
                ),
            )
            violations: dict[str, list[str]] = {}

            def visit(path: str, ready: str) -> None:
                response = page.goto(f"{platform.http}{path}")
                assert response is not None and response.status == 200, (path, response and response.status)
                assert "script-src 'self'" in (response.headers.get("content-security-policy") or ""), path
                expect(page.locator(ready).first).to_be_visible(timeout=15000)
                page.wait_for_load_state("networkidle")
                found = page.evaluate("window.__csp")
                if found:
                    violations[path] = found

            visit("/login/", "#login-submit")
            visit("/password/reset/", "#password-reset-submit")
            page.goto(f"{platform.http}/login/")
            page.fill("#id_username", "root@example.com")
            page.fill("#id_password", "pw-root-123")
            page.click("#login-submit")
            expect(page.locator("#bots-table")).to_contain_text("csp-bot")

            visit("/", "#bots-table")
            # The import map (nonce) and the modules ran: the stream is open.
            expect(page.locator("body")).to_have_attribute("data-stream-state", "open", timeout=15000)
            visit(f"/bots/{bot.pk}/", "#price-chart")
            expect(page.locator("body")).to_have_attribute("data-stream-state", "open", timeout=15000)
            visit("/leaderboard/", "#leaderboard-table")
            visit("/account/", "#change-password")
            visit("/account/two-factor/", "#totp-start")
            page.click("#totp-start")
            expect(page.locator(".qr svg")).to_be_visible()
            assert not page.evaluate("window.__csp"), page.evaluate("window.__csp")
            visit("/password/change/", "#password-change-submit")
            visit("/admin/", "#content-main")
            visit("/admin/bots/bot/", "#result_list")
            visit(f"/admin/bots/bot/{bot.pk}/change/", "#bot_form")
            visit("/admin/trading/exchangeaccount/add/", "#exchangeaccount_form")
            visit("/api/docs/", ".swagger-ui .title")
            visit("/api/redoc/", "h1")

            # Staff see Flower's link, and it opens.
            page.goto(f"{platform.http}/")
            link = page.locator("nav a", has_text="Flower")
            assert link.get_attribute("href") == fake_flower
            with context.expect_page() as popup:
                link.click()
            expect(popup.value.locator("#flower")).to_be_visible()

            # The account pages on a phone: nothing wider than the screen.
            phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
            phone_page = phone.new_page()
            for path, name in (("/login/", "login"), ("/password/reset/", "password_reset")):
                phone_page.goto(f"{platform.http}{path}")
                assert phone_page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), path
                phone_page.screenshot(path=str(SCREENSHOTS / f"phone_{name}.png"), full_page=True)
            phone_page.goto(f"{platform.http}/login/")
            phone_page.fill("#id_username", "root")
            phone_page.fill("#id_password", "pw-root-123")
            phone_page.click("#login-submit")
            for path, name in (("/account/", "account"), ("/password/change/", "password_change"), ("/account/two-factor/", "two_factor")):  # fmt: skip
                phone_page.goto(f"{platform.http}{path}")
                assert phone_page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), path
                phone_page.screenshot(path=str(SCREENSHOTS / f"phone_{name}.png"), full_page=True)
            page.goto(f"{platform.http}/password/change/")
            page.screenshot(path=str(SCREENSHOTS / "desktop_password_change.png"), full_page=True)
        finally:
            browser.close()

    # ReDoc's bundle asks for its vendor's logo off-site: the policy blocking it is the point.
    expected = {"/api/redoc/": ["img-src https://cdn.redoc.ly/redoc/logo-mini.svg :0"]}
    assert violations == expected, violations
    assert not [e for e in errors if "cdn.redoc.ly" not in e], errors


def test_the_chart_librarys_style_hash_matches_the_vendored_file(settings):
    # The hash in the policy is of the <style> the vendored chart library inserts; a new version of
    # the library changes it, and this says so before a browser would.
    import base64
    import hashlib
    import re

    source = (
        Path(settings.BASE_DIR) / "static/vendor/lightweight-charts/lightweight-charts.standalone.production.mjs"
    ).read_text()
    [style] = re.findall(r'createElement\("style"\),this\.\w+\.innerText="([^"]*)"', source)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]["style-src"]
