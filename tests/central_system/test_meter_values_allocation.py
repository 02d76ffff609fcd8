"""MeterValues from real station connections, as the load manager budgets them.

Each test drives stations through the consumer, lets the snapshot read what
was stored (and the zone meter, polled over Modbus) and checks the
allocation against what the EVs may really draw.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.utils import timezone

from apps.energy import state
from apps.energy.allocator import Allocation, Phase, allocate
from apps.energy.snapshot import SnapshotContext, build_snapshot, connector_key
from apps.meters.services import meters_poll
from apps.stations.models import MeterSample
from tests.energy.helpers import confirm_fallbacks
from tests.meters.factories import modbus_meter
from tests.stations.factories import (
    ConnectorFactory,
    DcConnectorFactory,
    StationFactory,
    TransactionFactory,
)
from tests.zones.factories import ZoneFactory

pytestmark = pytest.mark.django_db


def current(value_a: float, phase: str | None = None) -> dict:
    sampled = {"measurand": "Current.Import", "unit": "A", "value": str(value_a)}
    return sampled if phase is None else {**sampled, "phase": phase}


def per_phase(l1_a: float, l2_a: float, l3_a: float) -> list[dict]:
    return [current(l1_a, "L1"), current(l2_a, "L2"), current(l3_a, "L3")]


def charging(station, *, wiring: str, dc: bool = False):
    """An ongoing session on connector 1 of ``station``."""
    if dc:
        DcConnectorFactory(station=station, connector_id=1, phase_wiring=wiring, max_power_w=100000)
    else:
        ConnectorFactory(station=station, connector_id=1, phase_wiring=wiring)
    return TransactionFactory(station=station, connector_id=1, meter_start_wh=0)


def allocate_while_connected(
    make_station, sessions, samples: dict[int, list[list[dict]]], *, once_connected=None
) -> tuple[SnapshotContext, Allocation]:
    """Connect every station, send each its samples (one MeterValues each), then allocate.

    ``once_connected`` runs when every station is connected (a connection
    makes the control loop forget what it had sent to the station).
    """

    async def scenario():
        stations = []
        for session in sessions:
            station = make_station(session.station.identity)
            await station.open()
            stations.append(station)
        if once_connected is not None:
            await database_sync_to_async(once_connected)()
        for station, session in zip(stations, sessions, strict=True):
            for number, sampled_values in enumerate(samples.get(session.pk, [])):
                answer = await station.call(
                    "MeterValues",
                    {
                        "connectorId": 1,
                        "transactionId": session.pk,
                        "meterValue": [
                            {
                                "timestamp": f"2025-03-01T08:00:{10 * number:02d}Z",
                                "sampledValue": sampled_values,
                            }
                        ],
                    },
                )
                assert answer[0] == 3
        await database_sync_to_async(confirm_fallbacks)(
            [connector_key(session.station.identity, 1) for session in sessions]
        )
        context = await database_sync_to_async(build_snapshot)(now=timezone.now())
        for station in stations:
            await station.close()
        return context

    context = async_to_sync(scenario)()
    return context, allocate(context.snapshot)


def load_on(allocation: Allocation, phase: Phase, draws_on: dict[str, set[Phase]]) -> float:
    """What the EVs may draw on ``phase``: each its setpoint, on the phases it may use."""
    return sum(
        item.setpoint_a for item in allocation.sessions if phase in draws_on.get(item.key, set())
    )


ALL = {Phase.L1, Phase.L2, Phase.L3}


@pytest.fixture
def three_phase_ev_among_single_phase_ones(hot_state):
    """A static 32 A zone: a three-phase station, single-phase ones on L2 and L3."""
    zone = ZoneFactory(max_current_a=Decimal("32"))
    tri = charging(StationFactory(zone=zone), wiring="TRI123")
    on_l2 = charging(StationFactory(zone=zone), wiring="MONO2")
    on_l3 = charging(StationFactory(zone=zone), wiring="MONO3")
    return tri, on_l2, on_l3


@pytest.mark.parametrize(
    "tri_samples",
    [
        # No phase named: the current may flow on any phase.
        [[current(16)], [current(16)]],
        # Only L1 reported: nothing is known of L2 and L3.
        [[current(16, "L1")], [current(16, "L1")]],
        # One sample that looks single-phase is not yet evidence.
        [per_phase(16, 0, 0)],
        # Two samples that disagree.
        [per_phase(16, 16, 16), per_phase(16, 0, 0)],
        # A phase between "used" and "unused" proves nothing.
        [per_phase(16, 0.7, 0), per_phase(16, 0.7, 0)],
    ],
    ids=["no-phase", "l1-only", "one-sample", "disagreeing", "ambiguous"],
)
def test_an_ev_is_budgeted_on_every_phase_unless_samples_plainly_show_fewer(
    make_station, three_phase_ev_among_single_phase_ones, tri_samples
):
    tri, on_l2, on_l3 = three_phase_ev_among_single_phase_ones
    context, allocation = allocate_while_connected(
        make_station, [tri, on_l2, on_l3], {tri.pk: tri_samples}
    )
    tri_key = connector_key(tri.station.identity, 1)
    [session] = [s for s in context.snapshot.sessions if s.key == tri_key]
    assert session.ev_phases is None
    assert allocation.session(tri_key).phases == (Phase.L1, Phase.L2, Phase.L3)
    # Its limit lets the EV draw on all three phases: no phase may carry more than 32 A.
    draws_on = {
        tri_key: ALL,
        connector_key(on_l2.station.identity, 1): {Phase.L2},
        connector_key(on_l3.station.identity, 1): {Phase.L3},
    }
    for phase in Phase:
        assert load_on(allocation, phase, draws_on) <= 32.0
    assert [item.setpoint_a for item in allocation.sessions] == [16.0, 16.0, 16.0]


def test_a_phase_less_current_is_stored_as_such_and_never_counts_phases(
    make_station, three_phase_ev_among_single_phase_ones
):
    tri = three_phase_ev_among_single_phase_ones[0]
    allocate_while_connected(make_station, [tri], {tri.pk: [[current(16)]]})
    [sample] = MeterSample.objects.filter(transaction=tri)
    assert (sample.current_l1_a, sample.current_unknown_phase_a) == (None, 16.0)
    tri.refresh_from_db()
    assert tri.consumption_a == Decimal("16.0")
    assert tri.phases_used is None


def test_two_samples_plainly_single_phase_free_the_other_phases(
    make_station, three_phase_ev_among_single_phase_ones
):
    tri, on_l2, on_l3 = three_phase_ev_among_single_phase_ones
    samples = [per_phase(16, 0, 0.2), per_phase(15.8, 0.1, 0)]
    _context, allocation = allocate_while_connected(
        make_station, [tri, on_l2, on_l3], {tri.pk: samples}
    )
    tri_key = connector_key(tri.station.identity, 1)
    assert allocation.session(tri_key).phases == (Phase.L1,)
    assert [item.setpoint_a for item in allocation.sessions] == [32.0, 32.0, 32.0]


# ---------------------------------------------------------------------------- DC chargers

ZONE_MAX_A = 125.0
BUILDING_A = (40.0, 10.0, 10.0)
# A DC charger delivering 41.4 kW to a 400 V battery: 103.5 A DC, 60 A AC per phase.
DC_POWER_KW = 41.4
DC_OUTPUT_A = 103.5
DC_INPUT_A = 60.0


@pytest.fixture
def dc_and_two_single_phase_evs(meter_simulator, hot_state):
    """A dynamic 125 A zone: a DC charger and two single-phase EVs on L1, just plugged in."""
    meter = modbus_meter(meter_simulator.port)
    zone = ZoneFactory(max_current_a=Decimal("125"), meter=meter, degraded_current_a=20)
    dc = charging(StationFactory(zone=zone), wiring="TRI123", dc=True)
    evs = [charging(StationFactory(zone=zone), wiring="MONO1") for _ in range(2)]
    return zone, dc, evs


def poll_meter(meter_simulator, dc_input_a: float) -> None:
    """The zone meter sees the building plus the DC charger's AC input."""
    meter_simulator.set_values(1, current_a=tuple(b + dc_input_a for b in BUILDING_A))
    assert meters_poll(now=timezone.now()).read == 1


def assert_within_the_zone(allocation: Allocation, zone_id: int) -> None:
    figures = allocation.zone(zone_id)
    for phase in range(3):
        # The building's load is never taken for less than it is…
        assert figures.other_loads_a[phase] >= BUILDING_A[phase]
        # …so the building plus every setpoint fits in the zone.
        assert BUILDING_A[phase] + figures.allocated_a[phase] <= ZONE_MAX_A


@pytest.mark.parametrize(
    "dc_sample",
    [
        [current(DC_OUTPUT_A), {"measurand": "Power.Active.Import", "unit": "kW", "value": "41.4"}],
        [current(DC_OUTPUT_A, "L1"), {"measurand": "Power.Active.Import", "value": "41400"}],
        [current(DC_OUTPUT_A)],
    ],
    ids=["power", "power-w-and-l1", "dc-amps-only"],
)
def test_a_dc_charger_counts_in_its_meter_by_its_ac_input_never_its_dc_amps(
    make_station, meter_simulator, dc_and_two_single_phase_evs, dc_sample
):
    zone, dc, evs = dc_and_two_single_phase_evs
    poll_meter(meter_simulator, DC_INPUT_A)
    context, allocation = allocate_while_connected(make_station, [dc, *evs], {dc.pk: [dc_sample]})
    assert_within_the_zone(allocation, zone.pk)
    [dc_session] = [s for s in context.snapshot.sessions if s.connector.current_type == "DC"]
    if len(dc_sample) > 1:  # with its power, its AC input is taken off the meter
        assert dc_session.measured_current_a == pytest.approx((DC_INPUT_A,) * 3)
        assert allocation.zone(zone.pk).other_loads_a == pytest.approx(BUILDING_A, abs=0.2)
    else:
        assert dc_session.measured_current_a is None


def test_a_dc_power_sample_counts_at_most_the_setpoint_in_force(
    make_station, meter_simulator, dc_and_two_single_phase_evs
):
    """A sample from before a lower setpoint was accepted does not hide building load."""
    zone, dc, evs = dc_and_two_single_phase_evs

    def accepted_20_a_a_minute_ago() -> None:
        at_s = timezone.now().timestamp() - 60
        entry = {"transaction_id": dc.pk, "setpoint_a": 20.0, "setpoint_w": 13800.0}
        entry |= {"at_s": at_s, "valid_until_s": at_s + 600, "reason": "zone_limit"}
        entry = state.with_history(entry, None, sent_at_s=at_s, accepted_at_s=at_s)
        state.record_sent({connector_key(dc.station.identity, 1): entry})

    # The charger follows its 20 A setpoint; its last sample still shows 41.4 kW.
    poll_meter(meter_simulator, 20.0)
    sample = [current(DC_OUTPUT_A), {"measurand": "Power.Active.Import", "value": "41400"}]
    context, allocation = allocate_while_connected(
        make_station, [dc, *evs], {dc.pk: [sample]}, once_connected=accepted_20_a_a_minute_ago
    )
    [dc_session] = [s for s in context.snapshot.sessions if s.connector.current_type == "DC"]
    assert dc_session.drawing_cap_a == 20.0
    assert_within_the_zone(allocation, zone.pk)
