"""The operators' web UI in a real browser against the running demo stack."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def test_log_in_and_see_the_dashboard_on_a_1024_px_screen(demo_stack, page):
    username, password = demo_stack.credentials()
    page.set_viewport_size({"width": 1024, "height": 768})
    page.goto(f"{demo_stack.base_url}/")
    page.wait_for_url(f"{demo_stack.base_url}/login/?next=/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{demo_stack.base_url}/")

    assert page.get_by_role("heading", name="Dashboard").is_visible()
    assert page.get_by_role("rowheader", name="Main switchboard").first.is_visible()
    assert page.locator('[data-count="online"]').is_visible()
    assert page.locator("summary", has_text=username).is_visible()
    assert page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )
