from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from apps.stations.models import (
    Connector,
    CurrentType,
    MeterSample,
    OcppMessage,
    Station,
    StationState,
    Transaction,
)
from tests.zones.factories import ZoneFactory


class StationFactory(DjangoModelFactory):
    """An installed station in its own terminal zone."""

    class Meta:
        model = Station

    identity = factory.Sequence(lambda n: f"CP{n:04d}")
    name = factory.Sequence(lambda n: f"Bay {n}")
    state = StationState.INSTALLED
    zone = factory.SubFactory(ZoneFactory)


class DiscoveredStationFactory(StationFactory):
    name = ""
    state = StationState.DISCOVERED
    zone = None


class ConnectorFactory(DjangoModelFactory):
    class Meta:
        model = Connector

    station = factory.SubFactory(StationFactory)
    connector_id = factory.Sequence(lambda n: n % 99 + 1)
    current_type = CurrentType.AC
    max_current_a = Decimal("32")


class DcConnectorFactory(ConnectorFactory):
    current_type = CurrentType.DC
    max_current_a = None
    max_power_w = 50000


class TransactionFactory(DjangoModelFactory):
    class Meta:
        model = Transaction

    station = factory.SubFactory(StationFactory)
    station_identity = factory.LazyAttribute(lambda tx: tx.station.identity)
    station_name = factory.LazyAttribute(lambda tx: tx.station.name)
    connector_id = 1
    id_tag = factory.Sequence(lambda n: f"TAG{n}")
    started_at = factory.LazyFunction(lambda: timezone.now() - timedelta(hours=1))


class MeterSampleFactory(DjangoModelFactory):
    class Meta:
        model = MeterSample

    transaction = factory.SubFactory(TransactionFactory)
    station = factory.LazyAttribute(lambda s: s.transaction.station)
    connector_id = 1
    sampled_at = factory.LazyFunction(timezone.now)
    current_l1_a = 16.0


class OcppMessageFactory(DjangoModelFactory):
    class Meta:
        model = OcppMessage

    station_identity = "CP0001"
    at = factory.LazyFunction(timezone.now)
    direction = "in"
    message_type = 2
    unique_id = factory.Sequence(lambda n: f"msg-{n}")
    action = "Heartbeat"
