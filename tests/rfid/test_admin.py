import pytest
from django.urls import reverse

from apps.devicelog.models import DeviceLogEntry
from apps.rfid.cards_csv import HEADER
from apps.rfid.models import AuthGroup, Card
from tests.rfid.factories import AuthGroupFactory, CardFactory
from tests.stations.factories import StationFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:rfid_card_changelist"


def act(client, action, cards):
    return client.post(
        reverse(CHANGELIST),
        {"action": action, "_selected_action": [c.pk for c in cards]},
        follow=action != "export_csv",
    )


@pytest.mark.parametrize(
    ("action", "before", "after"),
    [
        ("authorize", {"authorized": False}, (True, False)),
        ("block", {"authorized": True}, (False, False)),
        ("vip_on", {"authorized": True}, (True, True)),
    ],
)
def test_bulk_actions_go_through_the_services(admin_client, action, before, after):
    cards = CardFactory.create_batch(2, **before)
    response = act(admin_client, action, cards)
    assert response.status_code == 200
    assert b"2 cards changed." in response.content
    assert {(c.authorized, c.vip) for c in Card.objects.all()} == {after}
    entry = DeviceLogEntry.objects.get()
    assert (entry.event, entry.username) == ("cards_bulk_updated", "admin")


def test_vip_off_action(admin_client):
    cards = CardFactory.create_batch(2, vip=True)
    act(admin_client, "vip_off", cards)
    assert not Card.objects.filter(vip=True).exists()


def test_export_action_streams_the_selected_cards(admin_client):
    card = CardFactory(id_tag="04A1B2C3", comment="Fleet")
    CardFactory(id_tag="OTHER")
    response = act(admin_client, "export_csv", [card])
    assert response["Content-Type"].startswith("text/csv")
    assert b"".join(response.streaming_content).decode() == f"{HEADER}\n04A1B2C3;0;0;Fleet;\n"


def test_adding_and_editing_a_card_is_logged(admin_client):
    staff = AuthGroupFactory(name="Staff")
    data = {"id_tag": "04A1B2C3", "authorized": "on", "comment": "New", "groups": [staff.pk]}
    response = admin_client.post(reverse("admin:rfid_card_add"), data)
    assert response.status_code == 302
    card = Card.objects.get()
    assert list(card.groups.all()) == [staff]

    data["comment"] = "Edited"
    admin_client.post(reverse("admin:rfid_card_change", args=[card.pk]), data)
    card.refresh_from_db()
    assert card.comment == "Edited"
    assert list(DeviceLogEntry.objects.order_by("id").values_list("event", flat=True)) == [
        "card_created",
        "card_updated",
    ]


def test_a_group_with_stations_is_not_deleted_from_the_admin(admin_client):
    group = AuthGroupFactory()
    StationFactory(auth_group=group)
    admin_client.post(reverse("admin:rfid_authgroup_delete", args=[group.pk]), {"post": "yes"})
    assert AuthGroup.objects.filter(pk=group.pk).exists()


def test_deleting_selected_cards_is_logged_once(admin_client):
    cards = CardFactory.create_batch(3)
    admin_client.post(
        reverse(CHANGELIST),
        {"action": "delete_selected", "_selected_action": [c.pk for c in cards], "post": "yes"},
    )
    assert not Card.objects.exists()
    assert DeviceLogEntry.objects.get().message == "3 RFID cards deleted."
