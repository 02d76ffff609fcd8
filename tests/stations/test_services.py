"""Station and transaction workflows (what the OCPP handlers rely on)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from apps.devicelog.models import DeviceLogEntry
from apps.stations import services
from apps.stations.models import (
    Connector,
    MeterSample,
    PhaseWiring,
    Station,
    StationState,
    Transaction,
    TransactionStatus,
)
from apps.stations.services import MeterReading, StationInfo
from tests.rfid.factories import CardFactory
from tests.stations.factories import (
    ConnectorFactory,
    DiscoveredStationFactory,
    StationFactory,
    TransactionFactory,
)
from tests.zones.factories import ZoneFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def start(station: Station, *, connector_id: int = 1, id_tag: str = "CARD1", meter_wh: int = 1000):
    return services.transaction_start(
        station=station,
        connector_id=connector_id,
        id_tag=id_tag,
        meter_start_wh=meter_wh,
        started_at=T0,
    )


class TestBoot:
    def test_unknown_identity_becomes_a_discovered_station(self):
        info = StationInfo(vendor="Acme", model="W22", serial_number="S1", firmware_version="2.0")
        station, created = services.station_boot(identity="NEW1", info=info, remote_addr="10.0.0.9")
        assert created
        assert station.state == StationState.DISCOVERED
        assert (station.vendor, station.model, station.serial_number) == ("Acme", "W22", "S1")
        assert station.ip_address == "10.0.0.9"
        assert DeviceLogEntry.objects.filter(event="station_discovered", station_identity="NEW1")

    def test_known_identity_is_matched_case_insensitively_and_updated(self):
        known = StationFactory(identity="CP-A1", firmware_version="1.0")
        station, created = services.station_boot(
            identity="cp-a1", info=StationInfo(vendor="Acme", model="W22", firmware_version="1.1")
        )
        assert not created and station.pk == known.pk
        known.refresh_from_db()
        assert known.firmware_version == "1.1"
        assert known.state == StationState.INSTALLED

    def test_overlong_fields_are_cut_to_fit(self):
        station, _ = services.station_boot(
            identity="LONG", info=StationInfo(vendor="V" * 40, model="M" * 40)
        )
        assert len(station.vendor) == 20 and len(station.model) == 20


class TestInstall:
    def test_install_sets_name_zone_and_connectors(self, django_capture_on_commit_callbacks):
        station = DiscoveredStationFactory()
        zone = ZoneFactory()
        with django_capture_on_commit_callbacks() as callbacks:
            services.station_install(
                station,
                name="Bay 3",
                zone=zone,
                vip=True,
                connectors=[
                    services.ConnectorSpec(1, PhaseWiring.MONO2, max_current_a=Decimal(16))
                ],
            )
        station.refresh_from_db()
        assert station.state == StationState.INSTALLED and station.zone == zone and station.vip
        connector = station.connectors.get()
        assert (connector.phase_wiring, connector.max_current_a) == ("MONO2", Decimal(16))
        # The station's connection is told (to ask for a new boot).
        assert any(getattr(c, "args", None) == (station.identity, "installed") for c in callbacks)

    def test_install_in_a_zone_with_sub_zones_changes_nothing(self):
        station = DiscoveredStationFactory()
        parent = ZoneFactory()
        ZoneFactory(parent=parent)
        with pytest.raises(ValidationError):
            services.station_install(station, name="Bay 3", zone=parent)
        station.refresh_from_db()
        assert station.state == StationState.DISCOVERED

    def test_refuse_and_delete_wait_for_the_end_of_sessions(self):
        station = StationFactory()
        session = TransactionFactory(station=station)
        with pytest.raises(ValidationError):
            services.station_refuse(station)
        with pytest.raises(ValidationError):
            services.station_delete(station)
        services.transaction_force_stop(session, user=None)
        assert services.station_refuse(station).state == StationState.REFUSED
        services.station_delete(station)
        assert not Station.objects.filter(pk=station.pk).exists()
        session.refresh_from_db()
        assert session.station is None and session.station_identity == station.identity


class TestStatus:
    def test_first_status_registers_the_connector(self):
        station = StationFactory()
        services.connector_status_update(station=station, connector_id=2, status="Available", at=T0)
        connector = Connector.objects.get(station=station, connector_id=2)
        assert connector.status == "Available" and connector.status_at == T0
        assert connector.max_current_a == Decimal(32)

    def test_connector_zero_is_the_station_status(self):
        station = StationFactory()
        services.connector_status_update(station=station, connector_id=0, status="Unavailable")
        station.refresh_from_db()
        assert station.status == "Unavailable"

    def test_time_in_charging_makes_the_charging_duration(self):
        station = StationFactory()
        session = start(station)
        for minute, status in [
            (0, "Charging"),
            (30, "SuspendedEV"),
            (40, "Charging"),
            (50, "Finishing"),
        ]:
            services.connector_status_update(
                station=station, connector_id=1, status=status, at=at(minute)
            )
        session.refresh_from_db()
        assert session.charging_duration_s == 40 * 60
        assert session.status == TransactionStatus.FINISHING

    def test_a_repeated_status_keeps_its_start_time(self):
        station = StationFactory()
        session = start(station)
        services.connector_status_update(
            station=station, connector_id=1, status="Charging", at=at(0)
        )
        services.connector_status_update(
            station=station, connector_id=1, status="Charging", at=at(5)
        )
        services.transaction_stop(
            station=station, transaction_id=session.pk, meter_stop_wh=5000, stopped_at=at(10)
        )
        session.refresh_from_db()
        assert session.charging_duration_s == 600


class TestTransactions:
    def test_full_session_gives_a_cdr(self):
        station = StationFactory(vip=False)
        card = CardFactory(id_tag="CARD1", vip=True)
        session = services.transaction_start(
            station=station,
            connector_id=1,
            id_tag="CARD1",
            meter_start_wh=1000,
            started_at=T0,
            card=card,
        )
        services.connector_status_update(station=station, connector_id=1, status="Charging", at=T0)
        stopped = services.transaction_stop(
            station=station,
            transaction_id=session.pk,
            meter_stop_wh=8500,
            stopped_at=at(60),
            reason="EVDisconnected",
            id_tag="CARD1",
        )
        assert stopped.pk == session.pk
        assert stopped.energy_wh == 7500 and stopped.energy_kwh == 7.5
        assert (stopped.started_at, stopped.stopped_at) == (T0, at(60))
        assert stopped.stop_reason == "EVDisconnected"
        assert stopped.status == TransactionStatus.FINISHED
        assert stopped.charging_duration_s == 3600
        assert stopped.vip and stopped.card == card
        assert stopped.station_name == station.name

    def test_repeated_start_is_the_same_session(self):
        station = StationFactory()
        assert start(station).pk == start(station).pk
        assert Transaction.objects.count() == 1

    def test_repeated_stop_changes_nothing(self):
        station = StationFactory()
        session = start(station)
        for _ in range(2):
            services.transaction_stop(
                station=station, transaction_id=session.pk, meter_stop_wh=2000, stopped_at=at(30)
            )
        session.refresh_from_db()
        assert session.energy_wh == 1000 and session.stopped_at == at(30)

    def test_unknown_stop_is_stored_not_lost(self):
        station = StationFactory()
        readings = [MeterReading(sampled_at=at(1), energy_wh=5100.0)]
        for _ in range(2):  # a re-sent stop is stored once
            stored = services.transaction_stop(
                station=station,
                transaction_id=987654,
                meter_stop_wh=5100,
                stopped_at=at(2),
                reason="PowerLoss",
                id_tag="CARD9",
                readings=readings,
            )
        assert stored.started_at is None and stored.stopped_at == at(2)
        assert (stored.connector_id, stored.id_tag, stored.stop_reason) == (0, "CARD9", "PowerLoss")
        assert Transaction.objects.count() == 1
        assert stored.samples.count() == 1
        event = DeviceLogEntry.objects.get(event="stop_unknown_transaction")
        assert event.data == {"transaction_id": 987654, "stored_as": stored.pk}

    def test_stop_before_start_time_is_clamped(self):
        station = StationFactory()
        session = start(station)
        services.transaction_stop(
            station=station, transaction_id=session.pk, meter_stop_wh=900, stopped_at=at(-5)
        )
        session.refresh_from_db()
        assert session.stopped_at == T0 and session.energy_wh == 0

    def test_force_stop_then_late_stop_reconciles(self):
        station = StationFactory()
        session = start(station)
        services.meter_values_record(
            station=station,
            connector_id=1,
            transaction_id=session.pk,
            readings=[MeterReading(sampled_at=at(10), energy_wh=3000.0)],
        )
        forced = services.transaction_force_stop(session, user=None, stopped_at=at(20))
        assert forced.forced_stop and forced.stopped_at == at(20)
        assert (forced.energy_wh, forced.meter_stop_wh) == (2000, 3000)
        assert forced.stop_reason == "Other"
        with pytest.raises(ValidationError):
            services.transaction_force_stop(forced, user=None)
        # The station comes back and reports what really happened.
        services.transaction_stop(
            station=station,
            transaction_id=session.pk,
            meter_stop_wh=6000,
            stopped_at=at(45),
            reason="Local",
        )
        session.refresh_from_db()
        assert (session.stopped_at, session.energy_wh, session.stop_reason) == (
            at(45),
            5000,
            "Local",
        )
        assert session.forced_stop
        assert DeviceLogEntry.objects.filter(event="transaction_force_stopped").count() == 1


class TestSupersededTransactions:
    """A connector runs one session: a new start closes what was left open there."""

    def test_a_new_start_supersedes_the_open_session_with_its_last_metered_energy(self):
        station = StationFactory()
        old = start(station, meter_wh=10_000)
        other_connector = start(station, connector_id=2, meter_wh=0)
        services.meter_values_record(
            station=station,
            connector_id=1,
            transaction_id=old.pk,
            readings=[
                MeterReading(at(10), energy_wh=12_500.0),
                MeterReading(at(20), energy_wh=14_200.0),
            ],
        )
        # The StopTransaction of ``old`` was lost; the station starts a new session.
        new = services.transaction_start(
            station=station,
            connector_id=1,
            id_tag="CARD2",
            meter_start_wh=15_000,
            started_at=at(90),
        )
        old.refresh_from_db()
        assert old.stopped_at == at(90) and old.status == TransactionStatus.FINISHED
        assert old.stop_reason == services.SUPERSEDED == "Superseded"
        assert (old.meter_stop_wh, old.energy_wh) == (14_200, 4_200)
        assert list(Transaction.objects.filter(stopped_at__isnull=True).order_by("pk")) == [
            other_connector,
            new,
        ]
        event = DeviceLogEntry.objects.get(event="transaction_superseded")
        assert event.level == "warning" and event.station_identity == station.identity
        assert event.data == {"transaction_id": old.pk, "superseded_by": new.pk, "energy_wh": 4200}

    def test_without_an_energy_sample_the_superseded_session_ends_at_its_start(self):
        station = StationFactory()
        old = start(station, meter_wh=5_000)
        services.meter_values_record(
            station=station,
            connector_id=1,
            transaction_id=old.pk,
            readings=[MeterReading(at(5), 16.0, 16.0, 16.0)],  # currents, no register
        )
        services.connector_status_update(station=station, connector_id=1, status="Charging", at=T0)
        services.transaction_start(
            station=station, connector_id=1, id_tag="CARD2", meter_start_wh=0, started_at=at(60)
        )
        old.refresh_from_db()
        assert (old.meter_stop_wh, old.energy_wh, old.stop_reason) == (5_000, 0, "Superseded")
        # Its end is unknown: the connector's time in Charging is not credited to it.
        assert old.charging_duration_s == 0

    def test_repeated_starts_keep_their_ids_and_supersede_nothing_more(self):
        station = StationFactory()
        old = start(station)
        new = services.transaction_start(
            station=station, connector_id=1, id_tag="CARD2", meter_start_wh=2000, started_at=at(30)
        )
        # Both starts are re-sent after a reconnection: the same ids come back.
        assert start(station).pk == old.pk
        again = services.transaction_start(
            station=station, connector_id=1, id_tag="CARD2", meter_start_wh=2000, started_at=at(30)
        )
        assert again.pk == new.pk
        new.refresh_from_db()
        assert new.stopped_at is None
        assert Transaction.objects.count() == 2
        assert DeviceLogEntry.objects.filter(event="transaction_superseded").count() == 1

    def test_the_last_start_to_arrive_wins_whatever_the_station_clock_says(self):
        """A station rebooted with its clock reset starts a session dated before the open one."""
        station = StationFactory()
        old = start(station)
        new = services.transaction_start(
            station=station, connector_id=1, id_tag="CARD2", meter_start_wh=0, started_at=at(-600)
        )
        old.refresh_from_db()
        assert old.stop_reason == "Superseded" and old.stopped_at == T0  # never before its start
        assert Transaction.objects.get(stopped_at__isnull=True) == new

    def test_a_late_stop_of_a_superseded_session_reconciles_it(self):
        station = StationFactory()
        old = start(station, meter_wh=1_000)
        services.transaction_start(
            station=station, connector_id=1, id_tag="CARD2", meter_start_wh=9_000, started_at=at(60)
        )
        # The lost StopTransaction finally arrives, with the station's figures.
        for _ in range(2):
            services.transaction_stop(
                station=station,
                transaction_id=old.pk,
                meter_stop_wh=8_000,
                stopped_at=at(40),
                reason="EVDisconnected",
            )
        old.refresh_from_db()
        assert (old.stopped_at, old.energy_wh, old.stop_reason) == (at(40), 7_000, "EVDisconnected")


class TestMeterValues:
    def test_samples_update_the_session_live_figures(self):
        station = StationFactory()
        session = start(station, meter_wh=10_000)
        services.meter_values_record(
            station=station,
            connector_id=1,
            transaction_id=session.pk,
            readings=[
                MeterReading(at(1), 15.9, 16.2, 0.1, power_w=7400.0, energy_wh=10_500.0),
                MeterReading(at(2), 15.8, 16.0, 0.0, power_w=7300.0, energy_wh=10_700.0),
            ],
        )
        session.refresh_from_db()
        assert session.energy_wh == 700
        assert session.phases_used == 2
        assert session.consumption_a == Decimal("16.0")
        assert session.samples.count() == 2

    def test_samples_for_unknown_or_no_transaction_are_kept(self):
        station = StationFactory()
        ConnectorFactory(station=station, connector_id=1)
        assert (
            services.meter_values_record(
                station=station,
                connector_id=1,
                transaction_id=424242,
                readings=[MeterReading(at(1), current_offered_a=16.0)],
            )
            is None
        )
        services.meter_values_record(
            station=station,
            connector_id=1,
            transaction_id=None,
            readings=[MeterReading(at(2), 8.0), MeterReading(at(3))],
        )
        assert MeterSample.objects.filter(station=station, transaction=None).count() == 2

    def test_energy_never_goes_back(self):
        station = StationFactory()
        session = start(station, meter_wh=0)
        for minute, energy in [(2, 900.0), (1, 400.0)]:  # late, out-of-order sample
            services.meter_values_record(
                station=station,
                connector_id=1,
                transaction_id=session.pk,
                readings=[MeterReading(at(minute), energy_wh=energy)],
            )
        session.refresh_from_db()
        assert session.energy_wh == 900


class TestConfiguration:
    """Declaring and changing stations: the one write path of every interface."""

    def test_install_is_logged(self):
        station = DiscoveredStationFactory()
        services.station_install(station, name="Bay 3", zone=ZoneFactory())
        assert DeviceLogEntry.objects.get().event == "station_installed"

    def test_a_declared_station_waits_for_installation(self):
        station = services.station_create(identity="CP-DECL", name="Bay 1")
        assert station.state == StationState.DISCOVERED
        assert DeviceLogEntry.objects.get().event == "station_declared"

    def test_an_identity_is_declared_once_whatever_its_case(self):
        StationFactory(identity="CP-ONE")
        with pytest.raises(ValidationError) as exc:
            services.station_create(identity="cp-one")
        assert "identity" in exc.value.message_dict
        assert Station.objects.count() == 1

    def test_update_changes_settings_and_connectors_but_never_the_state(self):
        station = StationFactory()
        ConnectorFactory(station=station, connector_id=1)
        ConnectorFactory(station=station, connector_id=2)
        services.station_update(
            station,
            name="Renamed",
            connectors=[services.ConnectorSpec(1, PhaseWiring.MONO1, max_current_a=Decimal(16))],
            replace_connectors=True,
        )
        assert station.name == "Renamed" and station.state == StationState.INSTALLED
        assert list(station.connectors.values_list("connector_id", "max_current_a")) == [
            (1, Decimal(16))
        ]
        with pytest.raises(TypeError):
            services.station_update(station, state=StationState.REFUSED)

    def test_a_bad_connector_changes_nothing_and_names_the_connector(self):
        station = StationFactory(name="Before")
        with pytest.raises(ValidationError) as exc:
            services.station_update(
                station,
                name="After",
                connectors=[services.ConnectorSpec(1, max_current_a=Decimal(2))],
            )
        assert "connectors[0].max_current_a" in exc.value.message_dict
        station.refresh_from_db()
        assert station.name == "Before" and not station.connectors.exists()
        assert not DeviceLogEntry.objects.exists()

    def test_an_update_that_changes_nothing_writes_nothing(self):
        station = StationFactory()
        services.station_update(station, name=station.name, vip=station.vip)
        assert not DeviceLogEntry.objects.exists()

    def test_an_installed_station_keeps_its_zone(self):
        station = StationFactory()
        with pytest.raises(ValidationError):
            services.station_update(station, zone=None)

    def test_a_new_group_reaches_the_station(self, django_capture_on_commit_callbacks):
        from tests.rfid.factories import AuthGroupFactory

        station = StationFactory()
        with django_capture_on_commit_callbacks() as callbacks:
            services.station_update(station, auth_group=AuthGroupFactory())
        assert callbacks
