"""Load management on a live stack: real OCPP stations, a real Modbus meter, the real control loop.

Three simulated three-phase stations charge in a dynamic 63 A zone whose meter
(a pymodbus server) measures a building load set by the test plus what the
simulated EVs draw. The test moves the building load, loses and restores the
meter, stops evce, and checks what the stations offer their EVs.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from apps.energy.allocator import PhaseWiring
from apps.simulator.engine import ArrivalPattern, Drivers, Endpoint, Fleet
from apps.simulator.engine.ev import EvModel
from apps.simulator.engine.model import ConnectorSpec, StationSpec
from apps.simulator.modbus_meter import MeterSimulator
from tests.e2e.stack import fleet_in_thread, start_stack

pytestmark = pytest.mark.e2e

ZONE_MAX_A = 63.0
DEGRADED_A = 18.0
IDENTITIES = ("LM-1", "LM-2", "LM-3")
SITE = """
site: {{name: Load management test, meter_poll_interval_ms: 500, optimisation: {{enabled: false}}}}
meters:
  - {{name: main, model: pm5320, host: 127.0.0.1, port: {port}, unit_id: 1, timeout_ms: 300}}
zones:
  - {{name: Main, max_current_a: 63, meter: main, degraded_current_a: 18}}
auth_groups:
  - {{name: Open, online: all_cards, offline: authorize_all}}
cards:
  - {{id_tag: LM-TAG, authorized: true, groups: [Open]}}
stations:
{stations}
"""


class LiveSite:
    def __init__(self, stack, meter: MeterSimulator, fleet: Fleet):
        self.stack, self.meter, self.fleet = stack, meter, fleet
        self.building_a = (10.0, 10.0, 10.0)

    def offered_a(self) -> list[float]:
        return [
            connector.offered_a
            for identity in IDENTITIES
            for connector in self.fleet.stations[identity].connectors.values()
        ]

    def ev_draw_a(self) -> tuple[float, float, float]:
        return self.fleet.phase_currents_a(list(IDENTITIES))

    def feed_meter(self, fleet: Fleet) -> None:
        evs = fleet.phase_currents_a(list(IDENTITIES))
        self.meter.set_values(
            1, current_a=tuple(b + e for b, e in zip(self.building_a, evs, strict=True))
        )

    def wait_for(self, condition: Callable[[], bool], timeout_s: float, what: str) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            if condition():
                return time.monotonic() - started
            time.sleep(0.05)
        raise AssertionError(
            f"{what} not reached within {timeout_s} s; offered {self.offered_a()}\n"
            f"{self.stack.log()[-3000:]}"
        )

    def assert_within_limit_for(self, duration_s: float, available_a: float) -> None:
        """Every sample: what the stations offer fits the current left for charging."""
        end = time.monotonic() + duration_s
        while time.monotonic() < end:
            offered = self.offered_a()
            assert sum(offered) <= available_a + 1e-6, f"offered {offered} > {available_a} A"
            assert all(o == 0 or o >= 6 for o in offered), (
                f"setpoint between 0 and the floor: {offered}"
            )
            time.sleep(0.05)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("evce-lm")
    meter = MeterSimulator(host="127.0.0.1", port=0)
    meter.add_unit(1)
    meter.set_values(1, current_a=(10.0, 10.0, 10.0))
    port = meter.start_in_thread()
    stations = "\n".join(
        f"  - {{identity: {i}, name: {i}, zone: Main, group: Open, "
        f"connectors: [{{id: 1, phases: TRI123, max_current_a: 32}}]}}"
        for i in IDENTITIES
    )
    (data_dir / "site.yaml").write_text(SITE.format(port=port, stations=stations))
    stack = start_stack(
        data_dir,
        demo=False,
        extra_env={"EVCE_SETPOINT_LEASE_S": "30", "EVCE_REBALANCE_PERIOD_S": "10"},
    )
    imported = stack.manage("site", "import", str(data_dir / "site.yaml"))
    assert imported.returncode == 0, imported.stderr

    suv = EvModel("SUV 3×32 A", phases=3, max_current_a=32, battery_kwh=200)
    specs = [
        StationSpec(
            identity=i,
            connectors=(ConnectorSpec(1, PhaseWiring.TRI123, 32.0),),
            configuration={"MeterValueSampleInterval": "2"},
        )
        for i in IDENTITIES
    ]
    fleet = Fleet.build(
        specs,
        Endpoint(f"ws://127.0.0.1:{stack.ocpp_port}"),
        arrivals=ArrivalPattern.parse("all"),
        drivers=Drivers(id_tags=("LM-TAG",), ev_models=(suv,), soc_range=(0.1, 0.2)),
        seed=7,
    )
    site = LiveSite(stack, meter, fleet)
    fleet.add_listener(site.feed_meter)
    try:
        with fleet_in_thread(fleet):
            yield site
    finally:
        stack.stop()
        meter.stop_thread()


def test_sessions_share_what_the_building_leaves(live):
    live.wait_for(lambda: all(o > 0 for o in live.offered_a()), 90, "all three sessions charging")
    # 63 A − 10 A of building load, shared by three sessions. Each raise leaves
    # room for its EV's ramp until a sample shows it: a few rounds of raises.
    live.wait_for(lambda: min(live.offered_a()) >= 15, 60, "the fair share")
    live.assert_within_limit_for(3, ZONE_MAX_A - 10)


def test_setpoints_fall_within_one_control_cycle_when_the_building_load_rises(live):
    live.wait_for(lambda: min(live.offered_a()) >= 15, 60, "the fair share")
    live.building_a = (40.0, 40.0, 40.0)
    reaction_s = live.wait_for(
        lambda: sum(live.offered_a()) <= ZONE_MAX_A - 40, 10, "the reduction"
    )
    assert reaction_s < 3.0, f"reaction took {reaction_s:.2f} s"
    live.assert_within_limit_for(4, ZONE_MAX_A - 40)

    # Not enough for three floors: one session is shed, never one below 6 A.
    live.building_a = (50.0, 50.0, 50.0)
    live.wait_for(
        lambda: sorted(live.offered_a())[0] == 0 and sum(live.offered_a()) <= 13, 10, "shedding"
    )
    live.assert_within_limit_for(3, ZONE_MAX_A - 50)
    # Once the EVs have followed, the two sessions that fit share the rest (a
    # reading taken while they ramp down may shed one more for a moment).
    live.wait_for(
        lambda: sum(1 for o in live.offered_a() if o > 0) == 2, 15, "two sessions charging"
    )
    live.assert_within_limit_for(2, ZONE_MAX_A - 50)


def test_a_lost_meter_runs_the_zone_on_its_degraded_setpoint_and_recovers(live):
    live.building_a = (10.0, 10.0, 10.0)
    live.wait_for(lambda: min(live.offered_a()) >= 15, 60, "the fair share")
    live.meter.set_online(1, False)
    live.wait_for(lambda: sum(live.offered_a()) <= DEGRADED_A, 15, "the degraded setpoint")
    live.assert_within_limit_for(3, DEGRADED_A)
    live.meter.set_online(1, True)
    live.wait_for(lambda: min(live.offered_a()) >= 15, 30, "normal allocation again")
    log = live.stack.manage(
        "shell",
        "-v",
        "0",
        "-c",
        "from apps.devicelog.models import DeviceLogEntry as E; "
        "print(sorted(set(E.objects.values_list('event', flat=True))))",
    ).stdout
    assert "meter_lost" in log and "degraded_entered" in log and "degraded_left" in log


def test_when_evce_stops_stations_fall_back_to_their_offline_current(live):
    live.building_a = (10.0, 10.0, 10.0)
    live.wait_for(lambda: min(live.offered_a()) >= 15, 60, "the fair share")
    live.stack.stop()
    # The live profiles expire (30 s lease); the fallback is degraded / connectors = 6 A.
    live.wait_for(lambda: live.offered_a() == [DEGRADED_A / 3] * 3, 60, "the offline current")
