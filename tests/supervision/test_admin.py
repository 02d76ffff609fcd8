"""The supervision admin writes through the services; passwords never shown back."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.devicelog.models import DeviceLogEntry
from apps.supervision.models import GroupSupervision, OutboxState, StationCpoPassword, Supervision
from apps.supervision.secrets import secret_decrypt
from apps.supervision.services import outbox_attempt_failed, outbox_enqueue, supervision_save
from tests.admin_pages import change_page
from tests.rfid.factories import AuthGroupFactory
from tests.stations.factories import StationFactory
from tests.supervision.factories import ca_certificate_pem

pytestmark = pytest.mark.django_db

PASSWORD = "Shared-Secret-42"


def form(**values) -> dict:
    data = {
        "name": "Operator A",
        "url": "wss://ocpp.operator-a.example/ocpp",
        "ping_interval_s": 30,
        "message_timeout_s": 30,
        "auth": "none",
        "password": "",
        "ca_certificate": "",
        "max_attempts": 500,
    }
    data.update(values)
    return data


def test_a_supervision_is_added_with_its_groups_and_an_encrypted_password(admin_client):
    staff = AuthGroupFactory(name="Staff")
    response = admin_client.post(
        reverse("admin:supervision_supervision_add"),
        form(
            auth="shared",
            password=PASSWORD,
            groups=[staff.pk],
            forward_security_events="on",
            ca_certificate=ca_certificate_pem(),
        ),
        follow=True,
    )

    assert response.status_code == 200
    supervision = Supervision.objects.get()
    assert supervision.forward_security_events
    assert secret_decrypt(supervision.password_encrypted) == PASSWORD.encode()
    assert GroupSupervision.objects.get().group == staff
    entry = DeviceLogEntry.objects.get(event="supervision_created")
    assert entry.username == "admin" and PASSWORD not in str(entry.data)
    # The change page never shows the password or its token.
    page = change_page(admin_client, supervision)
    assert PASSWORD not in page and supervision.password_encrypted not in page


def test_editing_without_a_password_keeps_it_and_a_hex_one_replaces_it(admin_client):
    supervision, _ = supervision_save(
        None, name="Operator A", url="ws://a.example", auth="shared", password=PASSWORD, user=None
    )
    url = reverse("admin:supervision_supervision_change", args=[supervision.pk])

    admin_client.post(url, form(url="ws://a.example", auth="shared", ping_interval_s=10))
    stored = Supervision.objects.get()
    assert stored.ping_interval_s == 10
    assert secret_decrypt(stored.password_encrypted) == PASSWORD.encode()

    admin_client.post(
        url, form(url="ws://a.example", auth="shared", password="0A0B", password_is_hex="on")
    )
    assert secret_decrypt(Supervision.objects.get().password_encrypted) == b"\x0a\x0b"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"url": "http://cpo.example"}, "Enter a ws:// or wss:// URL"),
        ({"ping_interval_s": 61}, "less than or equal to 60"),
        ({"auth": "shared"}, "Shared authentication needs a password."),
        ({"auth": "none", "password": PASSWORD}, "Only shared authentication takes a password."),
        ({"auth": "shared", "password": "0G", "password_is_hex": "on"}, "hex digits"),
        ({"url": "ws://cpo.example", "ca_certificate": ca_certificate_pem()}, "wss:// URL only"),
    ],
)
def test_bad_values_are_shown_on_the_form_and_change_nothing(admin_client, values, message):
    response = admin_client.post(reverse("admin:supervision_supervision_add"), form(**values))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Supervision.objects.exists()
    assert not DeviceLogEntry.objects.exists()


def test_deleting_a_supervision_that_supervises_groups_is_refused(admin_client):
    supervision, _ = supervision_save(
        None, name="Operator A", url="ws://a.example", groups=[AuthGroupFactory()], user=None
    )
    response = admin_client.post(
        reverse("admin:supervision_supervision_delete", args=[supervision.pk]),
        {"post": "yes"},
        follow=True,
    )
    # Refused before the service runs: the admin names the groups that hold it.
    assert "Cannot delete supervision" in response.content.decode()
    assert Supervision.objects.exists()


def test_a_station_password_is_set_in_hex_through_the_service(admin_client):
    station = StationFactory(identity="CP1")
    admin_client.post(
        reverse("admin:supervision_stationcpopassword_add"),
        {"station": station.pk, "password": "DEADBEEF", "password_is_hex": "on"},
    )
    stored = StationCpoPassword.objects.get()
    assert secret_decrypt(stored.password_encrypted) == bytes.fromhex("DEADBEEF")
    assert DeviceLogEntry.objects.filter(event="station_cpo_password_set").exists()
    assert "DEADBEEF" not in change_page(admin_client, stored)


def test_flagged_messages_are_listed_and_retried(admin_client):
    station = StationFactory(identity="CP1")
    message = outbox_enqueue(station=station, action="StopTransaction", payload={"n": 0})
    outbox_attempt_failed(message=message, error="timeout", max_attempts=1)

    listing = admin_client.get(reverse("admin:supervision_outboxmessage_changelist"))
    assert "StopTransaction" in listing.content.decode()
    response = admin_client.post(
        reverse("admin:supervision_outboxmessage_changelist"),
        {"action": "retry", "_selected_action": [message.pk]},
        follow=True,
    )
    assert "1 message queued again." in response.content.decode()
    message.refresh_from_db()
    assert (message.state, message.attempts) == (OutboxState.PENDING, 0)
