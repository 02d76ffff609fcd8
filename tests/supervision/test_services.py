"""Supervisions: validation (a bad value changes nothing), passwords encrypted at rest."""

from __future__ import annotations

import io
import json

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from apps.devicelog.models import DeviceLogEntry
from apps.siteconfig.models import SiteSettings
from apps.siteconfig.services import site_settings_update
from apps.supervision.models import GroupSupervision, StationCpoPassword, Supervision
from apps.supervision.secrets import SecretUnreadable, secret_decrypt
from apps.supervision.selectors import station_upstream_credentials
from apps.supervision.services import (
    group_supervision_set,
    station_cpo_password_clear,
    station_cpo_password_set,
    supervision_delete,
    supervision_save,
)
from apps.supervision.signals import supervision_changed
from tests.rfid.factories import AuthGroupFactory
from tests.stations.factories import StationFactory
from tests.supervision.factories import SupervisionFactory, ca_certificate_pem

pytestmark = pytest.mark.django_db

PASSWORD = "s3cret-Operator-A"


def create(**values):
    values.setdefault("name", "Operator A")
    values.setdefault("url", "wss://ocpp.operator-a.example/ocpp")
    return supervision_save(None, user=None, **values)[0]


def refused(call, **kwargs) -> dict[str, list[str]]:
    before = (
        list(Supervision.objects.values()),
        list(GroupSupervision.objects.values()),
        DeviceLogEntry.objects.count(),
    )
    with pytest.raises(ValidationError) as excinfo:
        call(**kwargs)
    after = (
        list(Supervision.objects.values()),
        list(GroupSupervision.objects.values()),
        DeviceLogEntry.objects.count(),
    )
    assert after == before, "a refused write changed something"
    return excinfo.value.message_dict


def test_a_supervision_is_created_with_its_settings_and_logged():
    supervision = create(
        ping_interval_s=10,
        message_timeout_s=20,
        forward_security_events=True,
        auth="shared",
        password=PASSWORD,
        ca_certificate=ca_certificate_pem(),
        max_attempts=50,
    )

    stored = Supervision.objects.get()
    assert (stored.ping_interval_s, stored.message_timeout_s, stored.max_attempts) == (10, 20, 50)
    assert stored.forward_security_events and stored.auth == "shared"
    entry = DeviceLogEntry.objects.get(event="supervision_created")
    assert PASSWORD not in json.dumps(entry.data) and PASSWORD not in entry.message
    assert supervision.pk == stored.pk


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"url": "http://cpo.example/ocpp"}, "url"),
        ({"url": "wss://"}, "url"),
        ({"url": "wss://cpo.example/oc pp"}, "url"),
        ({"ping_interval_s": 0}, "ping_interval_s"),
        ({"ping_interval_s": 61}, "ping_interval_s"),
        ({"message_timeout_s": 0}, "message_timeout_s"),
        ({"message_timeout_s": 61}, "message_timeout_s"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"auth": "token"}, "auth"),
        ({"auth": "shared"}, "password"),
        ({"auth": "none", "password": PASSWORD}, "password"),
        ({"auth": "per_station", "password": PASSWORD}, "password"),
        ({"auth": "shared", "password": "é-not-ascii"}, "password"),
        ({"auth": "shared", "password": ""}, "password"),
        ({"auth": "shared", "password_hex": "0A1"}, "password_hex"),
        ({"auth": "shared", "password_hex": "zz"}, "password_hex"),
        ({"auth": "shared", "password": "a", "password_hex": "0A"}, "password_hex"),
        ({"ca_certificate": "not a certificate"}, "ca_certificate"),
        (
            {"url": "ws://cpo.example/ocpp", "ca_certificate": ca_certificate_pem()},
            "ca_certificate",
        ),
    ],
)
def test_bad_values_are_refused_with_their_field_and_change_nothing(values, field):
    SupervisionFactory(name="Existing")
    errors = refused(create, **values)
    assert field in errors


def test_a_duplicate_name_is_refused():
    SupervisionFactory(name="Operator A")
    assert "name" in refused(create)


def test_an_update_that_fails_changes_nothing():
    supervision = create(auth="shared", password=PASSWORD)
    errors = refused(supervision_save, supervision=supervision, user=None, ping_interval_s=99)
    assert "ping_interval_s" in errors


def test_the_password_is_encrypted_at_rest_and_decrypts_back():
    supervision = create(auth="shared", password=PASSWORD)
    stored = Supervision.objects.get(pk=supervision.pk).password_encrypted

    assert stored and PASSWORD not in stored
    assert secret_decrypt(stored) == PASSWORD.encode()
    # A fresh IV each time: the same password never gives the same token.
    supervision_save(supervision, password=PASSWORD, user=None)
    assert Supervision.objects.get().password_encrypted != stored


def test_a_hex_password_is_stored_as_its_bytes():
    supervision = create(auth="shared", password_hex="00FF10a0")
    credentials = station_upstream_credentials(StationFactory(identity="CP1"), supervision)
    assert credentials.username == "CP1" and credentials.password == b"\x00\xff\x10\xa0"


def test_dumpdata_shows_no_clear_password():
    create(auth="shared", password=PASSWORD)
    station = StationFactory()
    station_cpo_password_set(station=station, password="station-own-secret", user=None)
    out = io.StringIO()

    call_command("dumpdata", "supervision", "devicelog", stdout=out)

    dump = out.getvalue()
    assert "password_encrypted" in dump
    assert PASSWORD not in dump and "station-own-secret" not in dump


def test_another_secret_key_cannot_read_the_password(settings):
    supervision = create(auth="shared", password=PASSWORD)
    settings.SECRET_KEY = "another-installation-" * 3
    with pytest.raises(SecretUnreadable):
        station_upstream_credentials(StationFactory(), supervision)


def test_shared_keeps_its_password_when_none_is_given_and_other_modes_forget_it():
    supervision = create(auth="shared", password=PASSWORD)
    supervision_save(supervision, ping_interval_s=5, user=None)
    assert Supervision.objects.get().has_password

    supervision_save(supervision, auth="none", user=None)
    assert not Supervision.objects.get().has_password


def test_an_update_that_changes_nothing_logs_nothing():
    supervision = create()
    count = DeviceLogEntry.objects.count()
    supervision_save(supervision, name="Operator A", ping_interval_s=30, user=None)
    assert DeviceLogEntry.objects.count() == count


def test_per_station_passwords_are_presented_for_their_station_only():
    supervision = create(auth="per_station")
    with_password, without = StationFactory(identity="CP1"), StationFactory(identity="CP2")
    station_cpo_password_set(station=with_password, password_hex="DEADBEEF", user=None)

    assert station_upstream_credentials(with_password, supervision).password == bytes.fromhex(
        "DEADBEEF"
    )
    assert station_upstream_credentials(without, supervision).password is None
    assert "DEADBEEF" not in StationCpoPassword.objects.get().password_encrypted.upper()

    assert station_cpo_password_clear(station=with_password, user=None)
    assert not StationCpoPassword.objects.exists()


def test_a_bad_station_password_is_refused_and_keeps_the_old_one():
    station = StationFactory()
    station_cpo_password_set(station=station, password="first", user=None)
    token = StationCpoPassword.objects.get().password_encrypted
    with pytest.raises(ValidationError):
        station_cpo_password_set(station=station, password="tab\tinside", user=None)
    assert StationCpoPassword.objects.get().password_encrypted == token


def test_groups_are_assigned_moved_and_cleared():
    staff, public = AuthGroupFactory(name="Staff"), AuthGroupFactory(name="Public")
    a = create(groups=[staff, public])
    b = create(name="Operator B", url="ws://b.example")

    assert group_supervision_set(group=public, supervision=b, user=None)
    assert not group_supervision_set(group=public, supervision=b, user=None)
    assert dict(GroupSupervision.objects.values_list("group__name", "supervision__name")) == {
        "Staff": a.name,
        "Public": b.name,
    }
    assert group_supervision_set(group=staff, supervision=None, user=None)
    assert list(GroupSupervision.objects.values_list("group__name", flat=True)) == ["Public"]


def test_a_supervision_that_still_supervises_groups_is_not_deleted():
    supervision = create(groups=[AuthGroupFactory(name="Staff")])
    with pytest.raises(ValidationError, match="Staff"):
        supervision_delete(supervision, user=None)
    assert Supervision.objects.exists()

    group_supervision_set(group=supervision.assignments.get().group, supervision=None, user=None)
    supervision_delete(supervision, user=None)
    assert not Supervision.objects.exists()
    assert DeviceLogEntry.objects.filter(event="supervision_deleted").exists()


def test_the_unique_mode_needs_exactly_one_supervision():
    with pytest.raises(ValidationError) as excinfo:
        site_settings_update(supervision_mode="unique", user=None)
    assert "exactly one supervision" in str(excinfo.value.message_dict["supervision_mode"])
    assert SiteSettings.load().supervision_mode == "local"

    only = create()
    site_settings_update(supervision_mode="unique", user=None)
    assert "name" in refused(create, name="Operator B", url="ws://b.example")
    with pytest.raises(ValidationError, match="change the mode first"):
        supervision_delete(only, user=None)
    assert Supervision.objects.get() == only


def test_changes_are_announced_once_after_commit(django_capture_on_commit_callbacks):
    events: list[frozenset[int]] = []

    def record(sender, supervision_ids, **kwargs):
        events.append(supervision_ids)

    supervision_changed.connect(record, dispatch_uid="test-supervision-changed", weak=False)
    try:
        staff = AuthGroupFactory(name="Staff")
        with django_capture_on_commit_callbacks(execute=True):
            a = create(groups=[staff])
        assert events == [frozenset({a.pk})]
        with django_capture_on_commit_callbacks(execute=True):
            b = create(name="Operator B", url="ws://b.example", groups=[staff])
        assert set(events[1:]) == {frozenset({a.pk}), frozenset({b.pk})}
    finally:
        supervision_changed.disconnect(dispatch_uid="test-supervision-changed")
