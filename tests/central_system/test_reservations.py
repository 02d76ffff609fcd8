"""Reservations: made, refused, cancelled, expired, and used by a StartTransaction naming them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.central_system import commands, reservations
from apps.stations.models import Reservation, ReservationStatus
from tests.rfid.factories import CardFactory
from tests.stations.factories import ConnectorFactory, StationFactory

pytestmark = pytest.mark.django_db


class Answering:
    def __init__(self, answer: str = "Accepted", error: Exception | None = None) -> None:
        self.answer, self.error = answer, error
        self.sent: list[commands.Command] = []

    def __call__(self, command: commands.Command) -> dict:
        self.sent.append(command)
        if self.error is not None:
            raise self.error
        return {"status": self.answer}


@pytest.fixture
def station():
    station = StationFactory()
    ConnectorFactory(station=station, connector_id=1)
    ConnectorFactory(station=station, connector_id=2)
    return station


def _reserve(station, send, *, connector_id=1, id_tag="DRIVER", minutes=30, **extra):
    return reservations.reservation_make(
        station=station,
        connector_id=connector_id,
        id_tag=id_tag,
        expires_at=timezone.now() + timedelta(minutes=minutes),
        send=send,
        **extra,
    )


def test_an_accepted_reservation_is_active(station):
    send = Answering("Accepted")
    reservation = _reserve(station, send, parent_id_tag="FLEET")
    [command] = send.sent
    assert command.action == "ReserveNow"
    assert command.payload["reservationId"] == reservation.pk
    assert command.payload["connectorId"] == 1
    assert command.payload["parentIdTag"] == "FLEET"
    assert commands.checked_payload(command.action, command.payload) == command.payload
    assert (reservation.status, reservation.station_answer) == ("active", "Accepted")


@pytest.mark.parametrize(
    ("send", "answer"),
    [
        (Answering("Occupied"), "Occupied"),
        (Answering(error=commands.StationOffline("gone")), "StationOffline: gone"),
    ],
)
def test_a_reservation_not_accepted_is_refused(station, send, answer):
    reservation = _reserve(station, send)
    assert (reservation.status, reservation.station_answer) == ("refused", answer)
    assert reservation.ended_at is not None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"connector_id": 7}, "connector_id"),
        ({"minutes": -1}, "expires_at"),
        ({"id_tag": "has space"}, "id_tag"),
    ],
)
def test_bad_reservations_are_refused_before_sending(station, kwargs, field):
    send = Answering()
    with pytest.raises(ValidationError) as error:
        _reserve(station, send, **kwargs)
    assert field in error.value.message_dict
    assert send.sent == [] and not Reservation.objects.exists()


def test_connector_zero_reserves_the_station(station):
    assert _reserve(station, Answering(), connector_id=0).status == "active"


def test_cancelling_ends_the_reservation(station):
    reservation = _reserve(station, Answering())
    send = Answering("Accepted")
    reservations.reservation_cancel(reservation=reservation, send=send)
    assert send.sent[0].payload == {"reservationId": reservation.pk}
    assert Reservation.objects.get(pk=reservation.pk).status == "cancelled"
    with pytest.raises(ValidationError, match="over already"):
        reservations.reservation_cancel(reservation=reservation, send=send)


def test_a_cancellation_that_cannot_reach_the_station_keeps_it(station):
    reservation = _reserve(station, Answering())
    with pytest.raises(ValidationError, match="could not be asked"):
        reservations.reservation_cancel(
            reservation=reservation, send=Answering(error=commands.StationOffline("gone"))
        )
    assert Reservation.objects.get(pk=reservation.pk).status == "active"


def test_reservations_past_their_expiry_are_expired(station):
    reservation = _reserve(station, Answering())
    later = _reserve(station, Answering(), connector_id=2, minutes=90)
    Reservation.objects.filter(pk=reservation.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert reservations.reservations_expire() == 1
    assert Reservation.objects.get(pk=reservation.pk).status == "expired"
    assert Reservation.objects.get(pk=later.pk).status == "active"
    assert reservations.reservations_expire() == 0


def _start(make_station, identity, **payload):
    async def scenario():
        cp = make_station(identity)
        await cp.open()
        await cp.boot()
        answer = await cp.call(
            "StartTransaction",
            {"meterStart": 0, "timestamp": timezone.now().isoformat(), **payload},
        )
        await cp.call(
            "StatusNotification", {"connectorId": 2, "errorCode": "NoError", "status": "Reserved"}
        )
        await cp.close()
        return answer

    return async_to_sync(scenario)()


def test_a_start_naming_the_reservation_uses_it(make_station, station, redis_url):
    CardFactory(id_tag="DRIVER")
    reservation = _reserve(station, Answering())
    answer = _start(
        make_station,
        station.identity,
        connectorId=1,
        idTag="driver",
        reservationId=reservation.pk,
    )
    assert answer[2]["idTagInfo"]["status"] == "Accepted"
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.USED
    assert reservation.transaction_id == answer[2]["transactionId"]
    assert station.connectors.get(connector_id=2).status == "Reserved"


def test_a_start_by_the_parent_tag_uses_it(make_station, station, redis_url):
    CardFactory(id_tag="COLLEAGUE", parent_id_tag="FLEET")
    reservation = _reserve(station, Answering(), connector_id=0, parent_id_tag="FLEET")
    answer = _start(
        make_station,
        station.identity,
        connectorId=2,
        idTag="COLLEAGUE",
        reservationId=reservation.pk,
    )
    assert answer[2]["idTagInfo"]["status"] == "Accepted"
    assert Reservation.objects.get(pk=reservation.pk).status == ReservationStatus.USED


def test_a_start_by_someone_else_is_invalid_and_keeps_the_reservation(
    make_station, station, redis_url
):
    CardFactory(id_tag="SOMEONE")
    reservation = _reserve(station, Answering())
    answer = _start(
        make_station,
        station.identity,
        connectorId=1,
        idTag="SOMEONE",
        reservationId=reservation.pk,
    )
    assert answer[2]["idTagInfo"]["status"] == "Invalid"
    assert Reservation.objects.get(pk=reservation.pk).status == ReservationStatus.ACTIVE
