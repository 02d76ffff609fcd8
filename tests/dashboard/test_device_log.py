"""The device log page ``/maintenance/log/``: filters, keyset pages, CSV export, roles."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient

from apps.devicelog.models import DeviceLogEntry, EventCategory, EventLevel
from apps.devicelog.selectors import PAGE_SIZE
from tests.accounts.factories import AdminFactory, UserFactory
from tests.stations.factories import StationFactory
from tests.zones.factories import ZoneFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)


def _entry(event: str, *, at: datetime = T0, **fields) -> DeviceLogEntry:
    defaults = {
        "category": EventCategory.CONFIGURATION,
        "level": EventLevel.INFO,
        "message": f"{event} happened.",
    }
    defaults.update(fields)
    return DeviceLogEntry.objects.create(at=at, event=event, **defaults)


@pytest.fixture
def operator(client, hot_state):
    client.force_login(UserFactory())
    return client


def _events(response) -> list[str]:
    return [entry.event for entry in response.context["page"].rows]


def test_operator_sees_the_log_newest_first(operator):
    _entry("first", at=T0)
    _entry("second", at=T0 + timedelta(minutes=1))
    response = operator.get("/maintenance/log/")
    assert response.status_code == 200
    assert _events(response) == ["second", "first"]
    body = response.content.decode()
    assert "second happened." in body
    # The newest page follows the live feed; the report button is for admins only.
    assert 'data-live-topics="stations devicelog"' in body
    assert "/maintenance/report.zip" not in body


def test_each_filter_narrows_the_list(operator):
    parent = ZoneFactory(name="Car park")
    child = ZoneFactory(name="Level -1", parent=parent)
    in_child = StationFactory(identity="CP-IN", zone=child)
    StationFactory(identity="CP-OUT")
    _entry(
        "station_connected",
        category=EventCategory.COMMUNICATION,
        station_identity=in_child.identity,
    )
    _entry("station_lost", category=EventCategory.COMMUNICATION, station_identity="CP-OUT")
    _entry(
        "degraded_entered",
        category=EventCategory.LOAD_MANAGEMENT,
        level=EventLevel.WARNING,
        zone_name="Level -1",
    )
    _entry(
        "login_failed",
        category=EventCategory.SECURITY,
        level=EventLevel.ERROR,
        username="mallory",
        at=T0 + timedelta(days=2),
    )

    def events(**query) -> set[str]:
        response = operator.get("/maintenance/log/", query)
        assert response.status_code == 200, response.content
        return set(_events(response))

    assert events(category="communication") == {"station_connected", "station_lost"}
    assert events(level="warning") == {"degraded_entered", "login_failed"}
    assert events(level="error") == {"login_failed"}
    assert events(station="CP-OUT") == {"station_lost"}
    # A zone holds its sub-zones' events and its stations' events.
    assert events(zone=parent.pk) == {"station_connected", "degraded_entered"}
    assert events(user="mallory") == {"login_failed"}
    assert events(q="DEGRADED") == {"degraded_entered"}
    assert events(q="lost happened") == {"station_lost"}
    assert events(**{"from": "2026-03-12"}) == {"login_failed"}
    assert events(**{"to": "2026-03-10"}) == {
        "station_connected",
        "station_lost",
        "degraded_entered",
    }
    assert events(category="security", **{"from": "2026-03-10", "to": "2026-03-11"}) == set()


@pytest.mark.parametrize(
    "query",
    [
        {"category": "gossip"},
        {"level": "loud"},
        {"station": "NOPE"},
        {"zone": "999999"},
        {"from": "2026-13-01"},
        {"from": "2026-03-12", "to": "2026-03-10"},
        {"older": "abc"},
        {"newer": "-3"},
    ],
)
def test_bad_filters_are_a_clear_400(operator, query):
    response = operator.get("/maintenance/log/", query)
    assert response.status_code == 400
    assert response.context["page"] is None
    assert response.context["form"].errors


def test_keyset_pages_walk_back_and_forth_and_stay_put_under_new_entries(operator):
    entries = [_entry(f"e{n}", at=T0 + timedelta(seconds=n)) for n in range(PAGE_SIZE * 2 + 5)]
    newest_first = [e.event for e in reversed(entries)]

    first = operator.get("/maintenance/log/")
    assert _events(first) == newest_first[:PAGE_SIZE]
    page = first.context["page"]
    assert page.newer is None and page.older is not None

    _entry("meanwhile", at=T0 + timedelta(days=1))  # does not shift the next pages
    second = operator.get("/maintenance/log/", {"older": page.older})
    assert _events(second) == newest_first[PAGE_SIZE : 2 * PAGE_SIZE]
    assert 'data-live-topics="stations"' in second.content.decode()  # no tail while paging
    third = operator.get("/maintenance/log/", {"older": second.context["page"].older})
    assert _events(third) == newest_first[2 * PAGE_SIZE :]
    assert third.context["page"].older is None

    back = operator.get("/maintenance/log/", {"newer": third.context["page"].newer})
    assert _events(back) == newest_first[PAGE_SIZE : 2 * PAGE_SIZE]
    back_again = operator.get("/maintenance/log/", {"newer": back.context["page"].newer})
    assert _events(back_again) == newest_first[:PAGE_SIZE]
    assert back_again.context["page"].newer is not None  # "meanwhile" is newer still


def test_filters_apply_across_pages(operator):
    for n in range(PAGE_SIZE + 3):
        _entry(f"keep{n}", category=EventCategory.SECURITY, at=T0 + timedelta(seconds=n))
        _entry(f"drop{n}", at=T0 + timedelta(seconds=n))
    first = operator.get("/maintenance/log/", {"category": "security"})
    second = operator.get(
        "/maintenance/log/", {"category": "security", "older": first.context["page"].older}
    )
    seen = _events(first) + _events(second)
    assert len(seen) == PAGE_SIZE + 3 and all(e.startswith("keep") for e in seen)
    body = first.content.decode()
    assert "category=security&amp;older=" in body


def _csv_rows(response) -> list[dict[str, str]]:
    content = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(content)))


def test_csv_export_streams_every_matching_entry(operator):
    for n in range(PAGE_SIZE + 10):
        _entry(f"lost{n}", category=EventCategory.COMMUNICATION, station_identity="CP1")
    _entry("card_created", user=None, username="alice", data={"id_tag": "ABC"})
    response = operator.get("/maintenance/log.csv", {"category": "communication"})
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = _csv_rows(response)
    assert len(rows) == PAGE_SIZE + 10  # every entry, not one page
    assert {row["category"] for row in rows} == {"communication"}
    assert rows[0]["event"] == f"lost{PAGE_SIZE + 9}"  # newest first

    everything = _csv_rows(operator.get("/maintenance/log.csv", {"user": "alice"}))
    assert [(r["event"], r["username"], r["data"]) for r in everything] == [
        ("card_created", "alice", '{"id_tag": "ABC"}')
    ]


def test_csv_export_streams_under_asgi_too(hot_state):
    _entry("station_connected", category=EventCategory.COMMUNICATION)
    client = AsyncClient()
    async_to_sync(client.aforce_login)(UserFactory())

    async def download() -> tuple[object, list[bytes]]:
        response = await client.get("/maintenance/log.csv")
        return response, [chunk async for chunk in response.streaming_content]

    response, chunks = async_to_sync(download)()
    assert response.status_code == 200
    assert response.is_async
    assert b"station_connected" in b"".join(chunks)


def test_csv_export_with_bad_filters_changes_nothing_and_says_why(operator):
    response = operator.get("/maintenance/log.csv", {"level": "loud"})
    assert response.status_code == 400
    assert "text/html" in response["Content-Type"]


@pytest.mark.parametrize("path", ["/maintenance/log/", "/maintenance/log.csv"])
def test_log_needs_a_ui_login(client, path):
    response = client.get(path)
    assert response.status_code == 302 and "/login/" in response["Location"]
    client.force_login(UserFactory(role="ebms"))
    assert client.get(path).status_code == 403


def test_device_report_is_for_admins_only(client, hot_state):
    client.force_login(UserFactory())
    assert client.get("/maintenance/report.zip").status_code == 403
    client.force_login(AdminFactory())
    response = client.get("/maintenance/report.zip")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith('attachment; filename="evce-report-')
    page = client.get("/maintenance/log/").content.decode()
    assert "/maintenance/report.zip" in page


def test_nav_links_to_the_log(operator):
    body = operator.get("/").content.decode()
    assert 'href="/maintenance/log/"' in body
