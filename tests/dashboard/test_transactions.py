"""The sessions page: filters, keyset pagination, bad input, the CDR export of SPEC §2.4."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import async_to_sync
from django.http import StreamingHttpResponse
from django.test import AsyncClient

from apps.stations import cdrs
from apps.stations.cdrs import Cursor
from apps.stations.models import Transaction
from tests.accounts.factories import AdminFactory, UserFactory
from tests.rfid.factories import CardFactory
from tests.stations.factories import StationFactory, TransactionFactory
from tests.zones.factories import TouPeriodFactory, ZoneFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)


@pytest.fixture
def operator(client, hot_state):
    client.force_login(UserFactory())
    return client


def _ids(response) -> list[int]:
    return [row.id for row in response.context["page"].rows]


def _finished(station, *, at: datetime, **fields) -> Transaction:
    defaults = {
        "stopped_at": at + timedelta(hours=2),
        "status": "Finished",
        "energy_wh": 12345,
        "charging_duration_s": 5400,
        "stop_reason": "Local",
    }
    defaults.update(fields)
    return TransactionFactory(station=station, started_at=at, **defaults)


def test_all_sessions_newest_first_with_ongoing_ones_marked(operator):
    station = StationFactory(name="Bay A")
    old = _finished(station, at=T0)
    ongoing = TransactionFactory(station=station, started_at=T0 + timedelta(days=1))
    response = operator.get("/transactions/")
    assert response.status_code == 200
    assert _ids(response) == [ongoing.pk, old.pk]
    body = response.content.decode()
    assert 'class="ongoing"' in body and "Bay A → 1" in body and "12.345" in body


def test_filters_ongoing_station_zone_card_and_days(operator):
    parent = ZoneFactory(name="Parking")
    level = ZoneFactory(name="Level -1", parent=parent)
    in_level = StationFactory(zone=level)
    elsewhere = StationFactory()
    a = _finished(in_level, at=T0, id_tag="CARD-A")
    b = _finished(elsewhere, at=T0 + timedelta(days=1), id_tag="CARD-B")
    c = TransactionFactory(station=elsewhere, started_at=T0 + timedelta(days=2), id_tag="CARD-A")

    def ids(**query) -> list[int]:
        response = operator.get("/transactions/", query)
        assert response.status_code == 200, response.content
        return _ids(response)

    assert ids(show="ongoing") == [c.pk]
    assert ids(station=elsewhere.pk) == [c.pk, b.pk]
    assert ids(zone=parent.pk) == [a.pk]  # a sub-zone's stations count
    assert ids(card="CARD-A") == [c.pk, a.pk]
    assert ids(**{"from": "2026-03-11", "to": "2026-03-11"}) == [b.pk]
    assert ids(**{"from": "2026-03-11"}) == [c.pk, b.pk]
    assert ids(station=in_level.pk, zone=ZoneFactory().pk) == []


def test_a_stop_without_start_is_listed_at_its_stop_time(operator):
    station = StationFactory()
    before = _finished(station, at=T0)
    orphan = TransactionFactory(
        station=station, started_at=None, stopped_at=T0 + timedelta(hours=5), status="Finished"
    )
    after = _finished(station, at=T0 + timedelta(hours=6))
    assert _ids(operator.get("/transactions/")) == [after.pk, orphan.pk, before.pk]


def test_keyset_pages_cover_every_session_once_in_both_directions(operator):
    station = StationFactory()
    # Pairs share a start time: the id breaks the tie.
    sessions = [_finished(station, at=T0 + timedelta(minutes=i // 2)) for i in range(125)]
    expected = sorted(sessions, key=lambda s: (s.started_at, s.pk), reverse=True)

    seen, pages, response = [], [], operator.get("/transactions/", {"station": station.pk})
    while True:
        page = response.context["page"]
        pages.append(page)
        seen += [row.id for row in page.rows]
        if page.older is None:
            break
        response = operator.get(
            "/transactions/", {"station": station.pk, "older": page.older.encode()}
        )
    assert seen == [s.pk for s in expected]
    assert [len(p.rows) for p in pages] == [50, 50, 25]
    assert pages[0].newer is None and pages[1].newer is not None

    back = operator.get("/transactions/", {"station": station.pk, "newer": pages[2].newer.encode()})
    assert _ids(back) == [row.id for row in pages[1].rows]
    first = operator.get("/transactions/", {"newer": pages[1].newer.encode()})
    assert _ids(first) == [row.id for row in pages[0].rows]
    assert first.context["page"].newer is None
    assert f"older={pages[1].older.encode()}" in back.content.decode()


@pytest.mark.parametrize("merge_max", [64, 1], ids=["merged per station", "one time walk"])
def test_a_zone_pages_like_everything_else(operator, monkeypatch, merge_max):
    monkeypatch.setattr(cdrs, "MERGE_MAX_STATIONS", merge_max)
    zone = ZoneFactory()
    inside = [StationFactory(zone=zone) for _ in range(3)]
    outside = StationFactory()
    sessions = [_finished(inside[i % 3], at=T0 + timedelta(minutes=i // 4)) for i in range(110)] + [
        TransactionFactory(station=inside[0], started_at=T0 + timedelta(minutes=7))
    ]
    for i in range(30):
        _finished(outside, at=T0 + timedelta(minutes=i))
    expected = [s.pk for s in sorted(sessions, key=lambda s: (s.started_at, s.pk), reverse=True)]

    seen, pages = [], []
    response = operator.get("/transactions/", {"zone": zone.pk})
    while True:
        pages.append(response.context["page"])
        seen += _ids(response)
        if pages[-1].older is None:
            break
        older = pages[-1].older.encode()
        response = operator.get("/transactions/", {"zone": zone.pk, "older": older})
    assert seen == expected
    back = operator.get("/transactions/", {"zone": zone.pk, "newer": pages[-1].newer.encode()})
    assert _ids(back) == [row.id for row in pages[-2].rows]
    ongoing = operator.get("/transactions/", {"zone": zone.pk, "show": "ongoing"})
    assert _ids(ongoing) == [sessions[-1].pk]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"from": "2026-13-45"}, "Enter a valid date."),
        ({"from": "2026-03-12", "to": "2026-03-10"}, "The end date is before the start date."),
        ({"older": "yesterday"}, "This page link is not valid"),
        ({"newer": "99999999999999999999999_1"}, "This page link is not valid"),
        ({"station": "nope"}, "Select a valid choice"),
        ({"card": "X" * 40}, "Ensure this value has at most 20 characters"),
    ],
)
def test_bad_filters_get_a_message_on_the_page(operator, query, message):
    for url in ("/transactions/", "/transactions/export.csv"):
        response = operator.get(url, query)
        assert response.status_code == 400
        assert message in response.content.decode()


def test_cursor_round_trip():
    cursor = Cursor(at=datetime(2026, 3, 10, 8, 0, 0, 123456, tzinfo=UTC), id=42)
    assert Cursor.decode(cursor.encode()) == cursor


def _export(response) -> list[list[str]]:
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(text), delimiter=";"))


def test_export_has_the_spec_columns_and_one_per_tou_period(operator, settings):
    settings.TIME_ZONE = "Europe/Paris"
    TouPeriodFactory(name="Peak")
    TouPeriodFactory(name="Night")
    station = StationFactory(name="Bay 7", identity="CP-7")
    card = CardFactory(id_tag="04AABB", comment="Fleet car 12")
    cdr = _finished(
        station,
        at=T0,
        id_tag="04AABB",
        card=card,
        connector_id=2,
        energy_wh=12000,
        tou_energy_wh={"NoPeriod": 2000, "Peak": 7500, "Night": 2500},
    )
    TransactionFactory(station=station, started_at=T0)  # ongoing: not a CDR yet
    _finished(station, at=T0 + timedelta(days=3))  # outside the range

    response = operator.get("/transactions/export.csv", {"from": "2026-03-10", "to": "2026-03-11"})
    assert response.status_code == 200
    assert 'filename="cdr-2026-03-10-2026-03-11.csv"' in response["Content-Disposition"]
    header, *rows = _export(response)
    assert header == [
        "transaction_id",
        "station_name",
        "connector",
        "id_tag",
        "card_comment",
        "start",
        "stop",
        "duration_s",
        "charging_duration_s",
        "energy_kwh",
        "stop_reason",
        "box_identity",
        "NoPeriod",
        "Night",
        "Peak",
    ]
    assert rows == [
        [
            str(cdr.pk),
            "Bay 7",
            "2",
            "04AABB",
            "Fleet car 12",
            "2026-03-10T09:00:00+01:00",
            "2026-03-10T11:00:00+01:00",
            "7200",
            "5400",
            "12.000",
            "Local",
            "CP-7",
            "2.000",
            "2.500",
            "7.500",
        ]
    ]


def test_export_walks_every_batch_in_time_order(operator):
    from apps.stations.cdrs import CdrFilter, cdr_export_batches

    station = StationFactory()
    sessions = [_finished(station, at=T0 - timedelta(minutes=i)) for i in range(7)]
    chunks = list(cdr_export_batches(CdrFilter(), batch_size=3))
    assert len(chunks) == 1 + 3  # header, then 3 + 3 + 1 records
    lines = "".join(chunks).splitlines()[1:]
    assert [int(line.split(";")[0]) for line in lines] == [s.pk for s in reversed(sessions)]


def test_export_streams_under_asgi_too(hot_state):
    """Under ASGI the file is sent as it is read, not gathered first."""
    station = StationFactory()
    cdr = _finished(station, at=T0)
    client = AsyncClient()
    async_to_sync(client.aforce_login)(AdminFactory())

    async def download() -> tuple[object, list[bytes]]:
        response = await client.get("/transactions/export.csv")
        return response, [chunk async for chunk in response.streaming_content]

    response, chunks = async_to_sync(download)()
    assert response.status_code == 200
    assert response.is_async
    assert f"\r\n{cdr.pk};".encode() in b"".join(chunks)


def test_an_ebms_account_is_refused(client):
    client.force_login(UserFactory(role="ebms"))
    assert client.get("/transactions/").status_code == 403
    assert client.get("/transactions/export.csv").status_code == 403


def test_anonymous_goes_to_the_login_page(client):
    response = client.get("/transactions/export.csv?from=2026-03-10")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=/transactions/export.csv")
