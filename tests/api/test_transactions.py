"""``/api/v2/transactions``: the charging data records, their filters, paging and export."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from apps.devicelog.models import DeviceLogEntry
from apps.stations.models import TransactionStatus
from tests.api.live_station import answered
from tests.rfid.factories import CardFactory
from tests.stations.factories import StationFactory, TransactionFactory
from tests.zones.factories import TouPeriodFactory

pytestmark = pytest.mark.django_db

DAY = datetime(2026, 11, 2, tzinfo=UTC)


def _stopped(station, *, start, minutes=60, energy_wh=7000, **extra):
    return TransactionFactory(
        station=station,
        started_at=start,
        stopped_at=start + timedelta(minutes=minutes),
        energy_wh=energy_wh,
        meter_start_wh=1000,
        meter_stop_wh=1000 + energy_wh,
        charging_duration_s=minutes * 60 - 300,
        stop_reason="EVDisconnected",
        status=TransactionStatus.FINISHED,
        **extra,
    )


def test_a_record_has_every_field_of_the_cdr_with_units(ebms):
    card = CardFactory(id_tag="CARD1", comment="Fleet car 12")
    record = _stopped(
        StationFactory(identity="CP-A"),
        start=DAY,
        id_tag="CARD1",
        card=card,
        tou_energy_wh={"NoPeriod": 3000, "Peak": 4000},
        phases_used=3,
    )

    body = ebms.get(f"/api/v2/transactions/{record.pk}/").json()

    assert body["id"] == record.pk and body["station_identity"] == "CP-A"
    assert body["connector_id"] == 1 and body["id_tag"] == "CARD1"
    assert body["card_comment"] == "Fleet car 12"
    assert body["started_at"] == "2026-11-02T00:00:00Z"
    assert body["stopped_at"] == "2026-11-02T01:00:00Z"
    assert body["duration_s"] == 3600 and body["charging_duration_s"] == 3300
    assert body["meter_start_wh"] == 1000 and body["meter_stop_wh"] == 8000
    assert body["energy_wh"] == 7000 and body["stop_reason"] == "EVDisconnected"
    assert body["status"] == "finished" and body["ongoing"] is False
    assert body["tou_energy_wh"] == {"NoPeriod": 3000, "Peak": 4000}
    assert body["phases_used"] == 3 and body["forced_stop"] is False
    assert {"setpoint_current_a", "consumption_current_a", "vip", "reservation_id"} <= set(body)


def test_filters_from_to_station_id_tag_and_ongoing(ebms):
    a, b = StationFactory(identity="CP-A"), StationFactory(identity="CP-B")
    early = _stopped(a, start=DAY - timedelta(days=1), id_tag="X")
    in_range = _stopped(a, start=DAY + timedelta(hours=8), id_tag="Y")
    other = _stopped(b, start=DAY + timedelta(hours=9), id_tag="Y")
    running = TransactionFactory(station=b, started_at=DAY + timedelta(hours=10), id_tag="Z")

    def ids(query: str) -> set[int]:
        response = ebms.get(f"/api/v2/transactions/?{query}")
        assert response.status_code == 200, response.json()
        return {item["id"] for item in response.json()["results"]}

    assert ids("") == {early.pk, in_range.pk, other.pk, running.pk}
    assert ids("from=2026-11-02&to=2026-11-02") == {in_range.pk, other.pk, running.pk}
    assert ids("from=2026-11-02T08:30:00Z&to=2026-11-02T10:00:00Z") == {other.pk}
    assert ids("station=cp-a") == {early.pk, in_range.pk}
    assert ids("id_tag=Y") == {in_range.pk, other.pk}
    assert ids("ongoing=true") == {running.pk}
    assert ids("ongoing=false&station=CP-B") == {other.pk}


def test_bad_filters_are_one_400_naming_each(ebms):
    response = ebms.get("/api/v2/transactions/?from=yesterday&ongoing=perhaps")

    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"from", "ongoing"}


def test_pages_follow_a_cursor_newest_first(ebms):
    station = StationFactory()
    records = [_stopped(station, start=DAY + timedelta(hours=n)) for n in range(5)]

    first = ebms.get("/api/v2/transactions/?limit=2").json()
    second = ebms.get(first["next"]).json()
    third = ebms.get(second["next"]).json()

    seen = [item["id"] for page in (first, second, third) for item in page["results"]]
    assert seen == [r.pk for r in reversed(records)]
    assert third["next"] is None


def test_an_unknown_record_is_404(ebms):
    response = ebms.get("/api/v2/transactions/999999/")

    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_the_export_streams_the_csv_of_the_range_with_tou_columns(ebms):
    TouPeriodFactory(name="Peak")
    station = StationFactory(identity="CP-A", name="Bay 1")
    card = CardFactory(id_tag="CARD1", comment="Fleet; car")
    record = _stopped(
        station,
        start=DAY,
        id_tag="CARD1",
        card=card,
        energy_wh=7250,
        tou_energy_wh={"NoPeriod": 3000, "Peak": 4250},
    )
    _stopped(station, start=DAY + timedelta(days=3))  # outside the range

    response = ebms.get("/api/v2/transactions/export.csv?from=2026-11-01&to=2026-11-02")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    # The same file as the sessions page exports (``apps.stations.cdrs``).
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert rows[0][:3] == ["transaction_id", "station_name", "connector"]
    assert rows[0][-2:] == ["NoPeriod", "Peak"]
    assert len(rows) == 2
    assert rows[1] == [
        str(record.pk),
        "Bay 1",
        "1",
        "CARD1",
        "Fleet; car",
        "2026-11-02T00:00:00+00:00",
        "2026-11-02T01:00:00+00:00",
        "3600",
        "3300",
        "7.250",
        "EVDisconnected",
        "CP-A",
        "3.000",
        "4.250",
    ]


def test_the_export_answers_a_client_asking_for_csv(ebms):
    response = ebms.get("/api/v2/transactions/export.csv", HTTP_ACCEPT="text/csv")

    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")


def test_force_stop_closes_a_running_session_audited_then_409(operator):
    record = TransactionFactory(energy_wh=1200, meter_start_wh=100)

    response = operator.post(f"/api/v2/transactions/{record.pk}/force-stop/")

    assert response.status_code == 200
    body = response.json()
    assert body["ongoing"] is False and body["forced_stop"] is True
    entry = DeviceLogEntry.objects.get(event="transaction_force_stopped")
    assert entry.user.role == "operator"
    again = operator.post(f"/api/v2/transactions/{record.pk}/force-stop/")
    assert again.status_code == 409 and again.json()["code"] == "state_conflict"


@pytest.mark.usefixtures("station_side")
def test_remote_stop_sends_remote_stop_transaction(operator):
    record = TransactionFactory()

    response = answered(
        operator,
        "post",
        f"/api/v2/transactions/{record.pk}/remote-stop/",
        None,
        expect=["RemoteStopTransaction", {"transactionId": record.pk}],
        answer={"status": "Accepted"},
        identity=record.station_identity,
    )

    assert response.status_code == 200 and response.json() == {"status": "accepted"}
    assert DeviceLogEntry.objects.get(event="station_command").data["action"] == (
        "RemoteStopTransaction"
    )


def test_remote_stop_of_a_stopped_session_is_409(operator):
    record = _stopped(StationFactory(), start=DAY)

    response = operator.post(f"/api/v2/transactions/{record.pk}/remote-stop/")

    assert response.status_code == 409


def test_a_time_range_pages_by_start_newest_first(ebms):
    station = StationFactory()
    # Stored out of order, as a station back online sends old sessions late.
    starts = [DAY + timedelta(hours=h) for h in (5, 1, 9, 3, 7)]
    records = {start: _stopped(station, start=start) for start in starts}

    first = ebms.get("/api/v2/transactions/?from=2026-11-02&to=2026-11-02&limit=2").json()
    second = ebms.get(first["next"]).json()
    third = ebms.get(second["next"]).json()

    seen = [item["id"] for page in (first, second, third) for item in page["results"]]
    assert seen == [records[start].pk for start in sorted(starts, reverse=True)]
    assert third["next"] is None
