"""``manage.py simulate`` against a minimal central system running in another thread."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from apps.rfid.models import AuthGroup, Card
from apps.simulator import selectors
from apps.stations.models import Connector, CurrentType
from tests.meters.factories import MeterFactory
from tests.simulator.csms import CentralSystem
from tests.stations.factories import StationFactory
from tests.zones.factories import ZoneFactory


@pytest.fixture
def central_system() -> Iterator[CentralSystem]:
    box: dict[str, CentralSystem] = {}
    ready, stop = threading.Event(), threading.Event()

    def serve() -> None:
        async def main() -> None:
            async with CentralSystem() as cs:
                box["cs"] = cs
                ready.set()
                while not stop.is_set():
                    await asyncio.sleep(0.02)

        asyncio.run(main())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(5)
    yield box["cs"]
    stop.set()
    thread.join(5)


def simulate(*args: str) -> str:
    out = io.StringIO()
    call_command("simulate", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_generated_stations_charge_and_stop_cleanly(central_system: CentralSystem) -> None:
    output = simulate(
        "--url",
        central_system.url,
        "--stations",
        "2",
        "--connectors",
        "2",
        "--arrival",
        "all",
        "--duration",
        "4",
        "--sample-interval",
        "1",
        "--status-every",
        "1",
        "--id-tags",
        "CARD-1",
        "--seed",
        "5",
    )
    assert "Simulating 2 station(s), 4 connector(s)" in output
    assert "up 2/2" in output
    starts = [m for m in central_system.received if m.action == "StartTransaction"]
    stops = [m for m in central_system.received if m.action == "StopTransaction"]
    assert {m.identity for m in starts} == {"SIM-001", "SIM-002"}
    assert len(starts) == len(stops) == 4
    assert {m.payload["id_tag"] for m in starts} == {"CARD-1"}
    assert any(m.action == "MeterValues" for m in central_system.received)


@pytest.mark.django_db
def test_from_site_uses_installed_stations_wiring_and_cards(
    central_system: CentralSystem,
) -> None:
    group = AuthGroup.objects.create(name="Staff")
    card = Card.objects.create(id_tag="04A1B2C3")
    card.groups.add(group)
    Card.objects.create(id_tag="LOST", authorized=False).groups.add(group)
    station = StationFactory(identity="SITE-CP1", auth_group=group)
    Connector.objects.create(
        station=station, connector_id=1, phase_wiring="MONO2", max_current_a=Decimal("16")
    )
    StationFactory(identity="SITE-DC", auth_group=None)
    Connector.objects.create(
        station_id=StationFactory(identity="SITE-DC2").pk,
        connector_id=1,
        current_type=CurrentType.DC,
        max_power_w=22080,
    )

    output = simulate(
        "--url",
        central_system.url,
        "--from-site",
        "--arrival",
        "all",
        "--duration",
        "4",
        "--sample-interval",
        "1",
    )
    # A station without connectors is left out.
    assert "Simulating 2 station(s), 2 connector(s)" in output
    starts = {
        m.identity: m.payload for m in central_system.received if m.action == "StartTransaction"
    }
    assert starts["SITE-CP1"]["id_tag"] == "04A1B2C3"
    meter_values = [
        m.payload
        for m in central_system.received
        if m.action == "MeterValues" and m.identity == "SITE-CP1"
    ]
    phases = {
        v.get("phase")
        for mv in meter_values
        for v in mv["meter_value"][0]["sampled_value"]
        if v["measurand"] == "Current.Import"
    }
    assert phases == {"L1"}  # a single-phase connector has one phase


@pytest.mark.parametrize(
    "arguments",
    [
        ["--arrival", "sometimes"],
        ["--dwell", "soon"],
        ["--stations", "0"],
        ["--id-tags", ","],
        ["--sample-interval", "-1"],
    ],
)
def test_bad_options_are_refused(arguments: list[str]) -> None:
    with pytest.raises(CommandError):
        simulate("--url", "ws://127.0.0.1:9", *arguments)


def test_only_websocket_urls() -> None:
    with pytest.raises(CommandError):
        simulate("--url", "http://127.0.0.1:9")


@pytest.mark.django_db
def test_each_zone_meter_sees_the_stations_below_its_zone() -> None:
    main_meter, level_meter = MeterFactory(), MeterFactory()
    top = ZoneFactory(meter=main_meter)
    level = ZoneFactory(parent=top, meter=level_meter)
    other = ZoneFactory(parent=top)
    StationFactory(identity="L1-A", zone=level)
    StationFactory(identity="OTHER", zone=other)
    StationFactory(identity="LOOSE", zone=ZoneFactory())

    assert selectors.metered_station_identities() == {
        main_meter.pk: ["L1-A", "OTHER"],
        level_meter.pk: ["L1-A"],
    }
