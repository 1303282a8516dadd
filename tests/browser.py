"""Debian's Chromium for the browser tests (never a downloaded browser), started the same way
everywhere."""

from __future__ import annotations

import shutil
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# For a test module's pytestmark.
needs_chromium = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None,
    reason=f"{CHROMIUM} is not installed (apt-get install chromium; `make test` does)",
)


def launch(playwright: Any) -> Any:
    """A headless Chromium browser; close it when done."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
