import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from ocpp.v16.enums import ChargePointStatus

from apps.energy import allocator
from apps.stations.models import (
    Connector,
    CurrentType,
    MeterSample,
    Station,
    StationState,
    Transaction,
    TransactionStatus,
)
from tests.rfid.factories import CardFactory
from tests.stations.factories import (
    ConnectorFactory,
    DcConnectorFactory,
    DiscoveredStationFactory,
    StationFactory,
    TransactionFactory,
)
from tests.zones.factories import ZoneFactory

pytestmark = pytest.mark.django_db


def errors_of(obj) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as excinfo:
        obj.full_clean()
    return excinfo.value.message_dict


# --- identity ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "identity",
    ["C", "CP001", "a-z_A-Z=0+9|x@y.z*", "DEMO-CP01", "x" * 30, "evse.01@site+b"],
)
def test_valid_identities_are_accepted(identity):
    DiscoveredStationFactory.build(identity=identity).full_clean()


@pytest.mark.parametrize(
    "identity",
    ["", "x" * 31, "CP 001", " CP001", "CP001\n", "CP/001", "CP#1", "borne-é", "CP:1", "CP%20"],
)
def test_invalid_identities_are_refused(identity):
    assert "identity" in errors_of(DiscoveredStationFactory.build(identity=identity))


def test_identities_are_unique():
    StationFactory(identity="CP001")
    assert "identity" in errors_of(DiscoveredStationFactory.build(identity="CP001"))
    with pytest.raises(IntegrityError), transaction.atomic():
        DiscoveredStationFactory(identity="CP001")


# --- authorization key ------------------------------------------------------------------


def test_the_authorization_key_is_stored_hashed_and_checked(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]  # production's
    station = StationFactory()
    station.set_authorization_key("0123456789abcdef")
    station.save()
    station.refresh_from_db()
    assert "0123456789abcdef" not in station.authorization_key_hash
    assert station.authorization_key_hash.startswith(("pbkdf2_", "argon2", "bcrypt", "scrypt"))
    assert station.check_authorization_key("0123456789abcdef")
    assert not station.check_authorization_key("0123456789abcdeF")
    assert not station.check_authorization_key("")


def test_the_same_key_gives_different_hashes_per_station():
    first, second = StationFactory.create_batch(2)
    first.set_authorization_key("shared-secret-1")
    second.set_authorization_key("shared-secret-1")
    assert first.authorization_key_hash != second.authorization_key_hash


def test_a_station_without_a_key_accepts_no_key():
    station = StationFactory()
    assert not station.check_authorization_key("")
    assert not station.check_authorization_key("anything")
    station.set_authorization_key("secret-key-1")
    station.set_authorization_key(None)
    assert station.authorization_key_hash == ""
    assert not station.check_authorization_key("secret-key-1")


# --- installation -----------------------------------------------------------------------


def test_a_discovered_station_needs_no_zone_nor_name():
    DiscoveredStationFactory.build().full_clean()


def test_an_installed_station_needs_a_zone_and_a_name():
    station = StationFactory.build(zone=None, name="")
    assert errors_of(station) == {
        "zone": ["An installed station needs a zone."],
        "name": ["An installed station needs a name."],
    }


def test_the_database_refuses_an_installed_station_without_zone():
    station = DiscoveredStationFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Station.objects.filter(pk=station.pk).update(state=StationState.INSTALLED)


def test_a_station_goes_on_a_terminal_zone_only():
    parent = ZoneFactory()
    ZoneFactory(parent=parent)
    assert errors_of(StationFactory.build(zone=parent)) == {
        "zone": ["Stations can only be assigned to terminal zones (without sub-zones)."]
    }


def test_a_station_on_a_terminal_zone_is_accepted():
    parent = ZoneFactory()
    leaf = ZoneFactory(parent=parent)
    StationFactory.build(zone=leaf).full_clean()


@pytest.mark.parametrize("profile", [-1, 4])
def test_security_profile_is_0_to_3(profile):
    station = StationFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Station.objects.filter(pk=station.pk).update(security_profile=profile)


# --- connectors -------------------------------------------------------------------------


def test_an_ac_connector_needs_a_maximum_current():
    connector = ConnectorFactory.build(station=StationFactory(), max_current_a=None)
    assert errors_of(connector) == {"max_current_a": ["An AC connector needs a maximum current."]}
    with pytest.raises(IntegrityError), transaction.atomic():
        connector.save()


def test_a_dc_connector_needs_a_maximum_power():
    connector = DcConnectorFactory.build(station=StationFactory(), max_power_w=None)
    assert errors_of(connector) == {"max_power_w": ["A DC connector needs a maximum power."]}
    with pytest.raises(IntegrityError), transaction.atomic():
        connector.save()


def test_a_dc_connector_with_power_is_accepted():
    connector = DcConnectorFactory.build(station=StationFactory())
    connector.full_clean()
    connector.save()
    assert connector.current_type == CurrentType.DC


def test_the_database_refuses_a_dc_connector_limited_in_current_only():
    with pytest.raises(IntegrityError), transaction.atomic():
        ConnectorFactory(current_type=CurrentType.DC, max_current_a=Decimal("125"))


@pytest.mark.parametrize(("current", "valid"), [("5.9", False), ("6", True), ("1000", True)])
def test_connector_current_range(current, valid):
    connector = ConnectorFactory.build(station=StationFactory(), max_current_a=Decimal(current))
    if valid:
        connector.full_clean()
    else:
        assert "max_current_a" in errors_of(connector)


def test_connector_ids_are_unique_per_station():
    station = StationFactory()
    ConnectorFactory(station=station, connector_id=1)
    ConnectorFactory(connector_id=1)  # same number on another station
    assert "__all__" in errors_of(ConnectorFactory.build(station=station, connector_id=1))
    with pytest.raises(IntegrityError), transaction.atomic():
        ConnectorFactory(station=station, connector_id=1)


@pytest.mark.parametrize("connector_id", [0, 100])
def test_connector_ids_are_1_to_99(connector_id):
    connector = ConnectorFactory.build(station=StationFactory(), connector_id=connector_id)
    assert "connector_id" in errors_of(connector)


def test_the_database_refuses_connector_zero():
    with pytest.raises(IntegrityError), transaction.atomic():
        ConnectorFactory(connector_id=0)


def test_connectors_go_with_their_station():
    connector = ConnectorFactory()
    connector.station.delete()
    assert not Connector.objects.exists()


# --- transactions -----------------------------------------------------------------------


def test_a_repeated_start_is_refused():
    first = TransactionFactory(id_tag="04A1B2C3")
    repeat = Transaction(
        station=first.station,
        station_identity=first.station_identity,
        connector_id=first.connector_id,
        id_tag="04A1B2C3",
        started_at=first.started_at,
    )
    assert "__all__" in errors_of(repeat)
    with pytest.raises(IntegrityError), transaction.atomic():
        repeat.save()


def test_starts_differing_in_any_key_are_kept_apart():
    first = TransactionFactory(id_tag="04A1B2C3", connector_id=1)
    for changes in (
        {"connector_id": 2},
        {"id_tag": "04A1B2C4"},
        {"started_at": first.started_at + timedelta(seconds=1)},
        {"station_identity": "OTHER"},
    ):
        values = {
            "station_identity": first.station_identity,
            "connector_id": 1,
            "id_tag": "04A1B2C3",
            "started_at": first.started_at,
        }
        Transaction.objects.create(**(values | changes))
    assert Transaction.objects.count() == 5


def test_stops_without_a_known_start_are_all_kept():
    stopped = timezone.now()
    for _ in range(2):
        Transaction.objects.create(
            station_identity="CP001", connector_id=1, id_tag="04A1B2C3", stopped_at=stopped
        )
    assert Transaction.objects.filter(started_at=None).count() == 2


def test_a_transaction_cannot_stop_before_it_starts():
    tx = TransactionFactory()
    tx.stopped_at = tx.started_at - timedelta(seconds=1)
    assert errors_of(tx) == {"stopped_at": ["A transaction cannot stop before it starts."]}
    with pytest.raises(IntegrityError), transaction.atomic():
        tx.save()


def test_a_transaction_may_stop_at_its_start_time():
    tx = TransactionFactory()
    tx.stopped_at = tx.started_at
    tx.full_clean()
    tx.save()
    assert not tx.is_ongoing


def test_meter_stop_below_meter_start_is_refused():
    tx = TransactionFactory(meter_start_wh=5000)
    tx.meter_stop_wh = 4999
    assert "meter_stop_wh" in errors_of(tx)


def test_the_database_refuses_negative_energy():
    with pytest.raises(IntegrityError), transaction.atomic():
        TransactionFactory(energy_wh=-1)


def test_a_transaction_survives_the_deletion_of_its_station_and_card():
    card = CardFactory(id_tag="04A1B2C3")
    tx = TransactionFactory(id_tag="04A1B2C3", card=card, energy_wh=12345)
    station = tx.station
    identity, name = station.identity, station.name
    sample = MeterSample.objects.create(
        transaction=tx, station=station, connector_id=1, sampled_at=timezone.now()
    )
    station.delete()
    card.delete()

    tx.refresh_from_db()
    assert tx.station is None
    assert tx.card is None
    assert (tx.station_identity, tx.station_name, tx.id_tag) == (identity, name, "04A1B2C3")
    assert tx.energy_kwh == 12.345
    sample.refresh_from_db()
    assert sample.station is None
    assert sample.transaction == tx


def _indexed_columns(table: str) -> list[list[str]]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return [c["columns"] for c in constraints.values() if c["index"]]


@pytest.mark.parametrize(
    "columns",
    [["started_at"], ["station_id", "started_at"], ["id_tag", "started_at"], ["stopped_at"]],
)
def test_transactions_are_indexed_for_exports_and_lookups(columns):
    assert columns in _indexed_columns(Transaction._meta.db_table)


def test_transaction_start_key_is_backed_by_a_unique_index():
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, Transaction._meta.db_table)
    assert ["station_identity", "connector_id", "id_tag", "started_at"] in [
        c["columns"] for c in constraints.values() if c["unique"]
    ]


def test_connector_choices_are_the_allocators_vocabulary():
    """What an installer can pick is exactly what the allocator understands."""
    assert [value for value, _ in Connector._meta.get_field("phase_wiring").choices] == [
        wiring.value for wiring in allocator.PhaseWiring
    ]
    assert [value for value, _ in Connector._meta.get_field("current_type").choices] == [
        kind.value for kind in allocator.CurrentType
    ]
    assert CurrentType is allocator.CurrentType


@pytest.mark.parametrize("wiring", list(allocator.PhaseWiring))
def test_connector_wiring_label_names_the_building_phases_in_order(wiring):
    """The label an installer reads says which building phase each station phase is on."""
    connector = ConnectorFactory.build(phase_wiring=wiring.value)
    label = str(connector.get_phase_wiring_display())
    assert [f"L{index + 1}" for index in wiring.building_phases] == re.findall(r"L\d", label)


def test_session_statuses_are_the_ocpp_connector_statuses_plus_finished():
    """A session takes its connector's OCPP status while it runs, then ``Finished``."""
    running = {status.value for status in TransactionStatus} - {TransactionStatus.FINISHED}
    assert running <= {status.value for status in ChargePointStatus}
