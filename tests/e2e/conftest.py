from __future__ import annotations

import pytest

from tests.e2e.stack import start_stack


@pytest.fixture(scope="session")
def demo_stack(tmp_path_factory):
    """One running evce with the demo site, shared by the end-to-end tests."""
    stack = start_stack(tmp_path_factory.mktemp("evce-demo"))
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium from the system package, driven by Playwright.

    Module-scoped: Playwright's sync API keeps an event loop running in the main
    thread while it is open, which other tests' ``asyncio.run`` cannot share.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield instance
        instance.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    yield page
    context.close()
