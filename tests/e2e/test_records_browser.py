"""Cards and sessions pages in a real browser against the running demo stack."""

from __future__ import annotations

import csv
import io

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def _log_in(stack, page) -> None:
    username, password = stack.credentials()
    page.goto(f"{stack.base_url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{stack.base_url}/")


def _row(page, id_tag: str):
    return page.get_by_role("row").filter(has=page.get_by_role("rowheader", name=id_tag))


def test_create_import_authorise_cards_then_export_sessions(demo_stack, page):
    base = demo_stack.base_url
    _log_in(demo_stack, page)

    # A new card starts blocked.
    page.get_by_role("link", name="Cards", exact=True).click()
    page.get_by_role("link", name="New card").click()
    page.fill("#id_id_tag", "E2E-NEW")
    page.fill("#id_comment", "Created in the browser")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(f"{base}/cards/")
    created = "Card E2E-NEW created. It is blocked until you authorise it."
    assert page.get_by_text(created).is_visible()

    # A file with a bad line changes nothing and says which line.
    page.goto(f"{base}/cards/import/")
    bad = b"id_tag;is_blocked;vip_level;comments;\nE2E-IMP1;0;0;ok;\nE2E IMP2;0;0;;\n"
    page.set_input_files("#id_file", {"name": "cards.csv", "mimeType": "text/csv", "buffer": bad})
    page.get_by_role("button", name="Import").click()
    alert = page.get_by_role("alert")
    assert "nothing was changed" in alert.inner_text()
    assert "line 3" in alert.inner_text()
    assert demo_stack.query("SELECT id_tag FROM rfid_card WHERE id_tag LIKE 'E2E-IMP%'") == []

    good = b"id_tag;is_blocked;vip_level;comments;\nE2E-IMP1;1;0;Van 1;\nE2E-IMP2;1;1;Van 2;\n"
    page.set_input_files("#id_file", {"name": "cards.csv", "mimeType": "text/csv", "buffer": good})
    page.get_by_role("button", name="Import").click()
    page.wait_for_url(f"{base}/cards/")
    assert page.get_by_text("File imported: 2 cards created, 0 updated, 0 unchanged.").is_visible()

    # Bulk: authorise the new card and one imported card.
    page.fill("#id_q", "E2E")
    page.get_by_role("button", name="Search").click()
    for tag in ("E2E-NEW", "E2E-IMP1"):
        page.get_by_label(f"Select {tag}").check()
    page.select_option("#id_action", "authorize")
    page.get_by_role("button", name="Apply").click()
    assert page.get_by_text("2 cards changed.").is_visible()
    assert _row(page, "E2E-NEW").get_by_text("authorised").is_visible()
    assert _row(page, "E2E-IMP2").get_by_text("blocked").is_visible()
    assert demo_stack.query(
        "SELECT id_tag, authorized FROM rfid_card WHERE id_tag LIKE 'E2E-%' ORDER BY id_tag"
    ) == [("E2E-IMP1", True), ("E2E-IMP2", False), ("E2E-NEW", True)]

    # The sessions page exports the CDRs with one column per TOU period.
    page.get_by_role("link", name="Sessions").click()
    page.wait_for_url(f"{base}/transactions/")
    page.fill("#id_from", "2020-01-01")
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Export CSV").click()
    download = download_info.value
    assert download.suggested_filename.startswith("cdr-2020-01-01-")
    with open(download.path(), encoding="utf-8") as exported:
        header = next(csv.reader(io.StringIO(exported.read()), delimiter=";"))
    rows = demo_stack.query("SELECT name FROM zones_touperiod ORDER BY name")
    periods = [name for (name,) in rows]
    assert periods  # the demo has TOU periods
    assert header[-len(periods) - 2 :] == ["box_identity", "NoPeriod", *periods]
