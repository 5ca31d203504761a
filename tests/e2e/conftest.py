"""Fixtures of the browser tests: Debian's chromium through Playwright, and screenshots.

Playwright never downloads a browser here: it drives ``/usr/bin/chromium``. Without it the tests
are skipped, except under CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from ..example.conftest import shop

__all__ = ["shop"]  # the example shop's fixture, shared

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"
TIMEOUT_MS = 15_000

expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Debian's chromium, headless, for the browser tests.

    Package-scoped: Playwright's sync API runs an asyncio event loop in the main thread while it
    is open, and Django refuses database access from a thread with a running loop
    (``SynchronousOnlyOperation``), so it must be closed before the rest of the suite runs.
    """
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must run the browser tests.")
        pytest.skip(reason)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile (cookies, localStorage) per test."""
    created = browser.new_context(viewport={"width": 1100, "height": 760})
    created.set_default_timeout(TIMEOUT_MS)
    yield created
    created.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    """A tab in the test's profile."""
    return context.new_page()


class Screenshots:
    """Saves numbered full-page screenshots of one scenario under ``test-artifacts/e2e/``."""

    def __init__(self, scenario: str) -> None:
        self.scenario = scenario
        self.count = 0
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for old in SCREENSHOTS.glob(f"{scenario}-*.png"):
            old.unlink()

    def take(self, page: Page, step: str) -> Path:
        """Save ``<scenario>-<nn>-<step>.png`` and return its path."""
        self.count += 1
        path = SCREENSHOTS / f"{self.scenario}-{self.count:02d}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        return path
