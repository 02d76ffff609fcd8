"""The device log and the device report in a real browser against the running demo stack."""

from __future__ import annotations

import csv
import io
import zipfile

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def _log_in(stack, page) -> None:
    username, password = stack.credentials()
    page.goto(f"{stack.base_url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{stack.base_url}/")


def test_device_log_filters_live_tail_export_and_report(demo_stack, page):
    base = demo_stack.base_url
    _log_in(demo_stack, page)

    page.get_by_role("link", name="Device log").click()
    page.wait_for_url(f"{base}/maintenance/log/")
    # Logging in was a security event.
    page.select_option("#id_category", "security")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/maintenance/log/?*category=security*")
    rows = page.locator("#device-log tbody tr")
    assert rows.count() > 0
    assert set(rows.locator("td:nth-child(2)").all_inner_texts()) == {"Security"}

    with page.expect_download() as download_info:
        page.get_by_role("button", name="Export CSV").click()
    with open(download_info.value.path(), encoding="utf-8") as exported:
        exported_rows = list(csv.DictReader(io.StringIO(exported.read())))
    assert exported_rows and {row["category"] for row in exported_rows} == {"security"}

    # Live tail: an entry written elsewhere appears on the open page without a reload.
    page.goto(f"{base}/maintenance/log/?category=configuration")
    page.wait_for_selector("#live-state[data-state=live]")
    other = page.context.new_page()
    other.goto(f"{base}/cards/new/")
    other.fill("#id_id_tag", "LOGTAIL-1")
    other.get_by_role("button", name="Save").click()
    other.wait_for_url(f"{base}/cards/")
    page.locator("#device-log").get_by_text("RFID card LOGTAIL-1 created.").wait_for(timeout=10_000)

    # The device report, for the administrator.
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download the device report").click()
    download = download_info.value
    assert download.suggested_filename.startswith("evce-report-")
    with zipfile.ZipFile(download.path()) as report:
        names = set(report.namelist())
        assert {"identification.json", "configuration.yaml", "device-log.csv"} <= names
        assert any(name.startswith("ocpp/") for name in names)
