"""The admin, as support staff use it, in a real browser against the running stack."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def test_admin_login_and_demo_site(demo_stack, page):
    username, password = demo_stack.credentials()
    page.goto(f"{demo_stack.base_url}/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", "wrong password")
    page.click("input[type=submit]")
    assert page.locator(".errornote").is_visible()

    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_url(f"{demo_stack.base_url}/admin/")

    page.goto(f"{demo_stack.base_url}/admin/zones/zone/")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 6
    assert page.get_by_role("link", name="Main switchboard").first.is_visible()

    # A station and its connectors, as the installer declared them.
    page.goto(f"{demo_stack.base_url}/admin/stations/station/?q=DEMO-CP03")
    page.get_by_role("link", name="DEMO-CP03").click()
    assert page.locator("#id_connectors-0-phase_wiring").input_value() == "MONO1"
    assert page.locator("#id_connectors-1-phase_wiring").input_value() == "MONO2"


def test_admin_refuses_a_sub_zone_above_its_parent(demo_stack, page):
    username, password = demo_stack.credentials()
    page.goto(f"{demo_stack.base_url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.goto(f"{demo_stack.base_url}/admin/zones/zone/add/")
    page.fill("#id_name", "Too big")
    page.select_option("#id_parent", label="Main switchboard")
    page.fill("#id_max_current_a", "200")
    page.click("input[name=_save]")
    assert "exceeds parent's 160 A" in page.locator(".errorlist").first.inner_text()
    page.goto(f"{demo_stack.base_url}/admin/zones/zone/?q=Too+big")
    assert page.locator("#result_list").count() == 0  # nothing was created
