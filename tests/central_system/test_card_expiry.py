"""Card expiry: ``Expired`` after the date, ``expiryDate`` before it, in answers and local lists."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.utils import timezone

from apps.central_system import station_sync
from apps.central_system.authorization import authorize_id_tag
from apps.central_system.protocol import format_datetime
from apps.rfid.models import AuthGroup, Card, OnlineMode
from apps.rfid.services import card_update
from tests.rfid.factories import CardFactory
from tests.stations.factories import StationFactory

pytestmark = pytest.mark.django_db


def test_a_card_past_its_expiry_is_expired_and_before_it_carries_the_date():
    later = timezone.now() + timedelta(days=30)
    card = CardFactory(id_tag="SOON", expires_at=later)
    station = StationFactory()
    info = authorize_id_tag(station, "soon").as_ocpp()
    assert info["status"] == "Accepted"
    assert info["expiryDate"] == format_datetime(later)

    card_update(card=card, expires_at=timezone.now() - timedelta(seconds=1), user=None)
    assert authorize_id_tag(station, "SOON").as_ocpp()["status"] == "Expired"
    # Blocked says more than expired: it wins.
    card_update(card=card, authorized=False, user=None)
    assert authorize_id_tag(station, "SOON").as_ocpp()["status"] == "Blocked"
    # Removing the date makes the card valid again.
    card_update(card=card, authorized=True, expires_at=None, user=None)
    assert authorize_id_tag(station, "SOON").as_ocpp() == {"status": "Accepted"}


def test_an_update_without_an_expiry_keeps_it():
    later = timezone.now() + timedelta(days=3)
    card = CardFactory(expires_at=later)
    card_update(card=card, comment="renamed", user=None)
    assert Card.objects.get(pk=card.pk).expires_at == later


def test_local_lists_carry_the_expiry_and_list_expired_cards_as_expired():
    group = AuthGroup.objects.create(name="Members")
    later = timezone.now() + timedelta(days=30)
    CardFactory(id_tag="VALID", groups=[group])
    CardFactory(id_tag="SOON", expires_at=later, groups=[group], parent_id_tag="FLEET")
    CardFactory(id_tag="GONE", expires_at=timezone.now() - timedelta(days=1), groups=[group])
    CardFactory(id_tag="ELSEWHERE", expires_at=timezone.now() - timedelta(days=1))
    entries = station_sync.group_local_list(group)
    assert entries["VALID"] == {"status": "Accepted"}
    assert entries["SOON"]["status"] == "Accepted"
    assert entries["SOON"]["parentIdTag"] == "FLEET"
    assert entries["SOON"]["expiryDate"].startswith(later.strftime("%Y-%m-%dT"))
    assert entries["GONE"]["status"] == "Expired"
    assert "ELSEWHERE" not in entries
    # An open group refuses only blocked and expired cards: it lists them all.
    group.online_mode = OnlineMode.ALL_CARDS
    assert station_sync.group_local_list(group)["ELSEWHERE"]["status"] == "Expired"


def test_start_transaction_with_an_expired_card_is_answered_expired(make_station, redis_url):
    CardFactory(id_tag="GONE", expires_at=timezone.now() - timedelta(minutes=1))
    station = StationFactory()

    async def scenario():
        cp = make_station(station.identity)
        await cp.open()
        await cp.boot()
        authorize = await cp.call("Authorize", {"idTag": "GONE"})
        start = await cp.call(
            "StartTransaction",
            {
                "connectorId": 1,
                "idTag": "GONE",
                "meterStart": 0,
                "timestamp": timezone.now().isoformat(),
            },
        )
        await cp.close()
        return authorize, start

    authorize, start = async_to_sync(scenario)()
    assert authorize[2]["idTagInfo"]["status"] == "Expired"
    assert start[2]["idTagInfo"]["status"] == "Expired"
    assert "expiryDate" in start[2]["idTagInfo"]
