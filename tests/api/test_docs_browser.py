"""The interactive API docs in a real browser: they render, and nothing is fetched from another
host (no CDN, no web fonts): the platform runs offline and its docs tell no third party who reads
them."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.browser import launch, needs_chromium
from tests.realtime.servers import running_platform

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    needs_chromium,
]


def test_swagger_and_redoc_render_from_this_site_only():
    from playwright.sync_api import expect, sync_playwright

    with running_platform(worker=False, beat=False) as platform, sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page()
            site = urlsplit(platform.http).netloc
            # Requests the page tried to make to another host, and why each did not go out.
            off_site: dict[str, str] = {}
            blocked: dict[str, str] = {}
            page.on("request", lambda r: urlsplit(r.url).netloc not in ("", site) and off_site.setdefault(r.url, ""))
            page.on("requestfailed", lambda r: blocked.setdefault(r.url, r.failure or ""))

            page.goto(f"{platform.http}/api/docs/")
            expect(page.locator(".swagger-ui .title")).to_contain_text("tradingagent API", timeout=15000)
            expect(page.locator(".opblock-summary-path").first).to_be_visible()

            page.goto(f"{platform.http}/api/redoc/")
            expect(page.locator("h1")).to_contain_text("tradingagent API", timeout=15000)
            expect(page.get_by_text("/api/bots/").first).to_be_attached()
            page.wait_for_load_state("networkidle")
            # The pages link nothing off-site (no fonts, no CDN); ReDoc's bundle itself asks for
            # its vendor's logo, which the page's Content-Security-Policy stops in the browser.
            assert set(off_site) <= {"https://cdn.redoc.ly/redoc/logo-mini.svg"}
            assert all(blocked.get(url) == "csp" for url in off_site), blocked
        finally:
            browser.close()
