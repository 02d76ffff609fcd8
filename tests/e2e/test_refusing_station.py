"""A station that refuses every decrease, on a live stack with real OCPP stations.

A static 40 A zone with three three-phase 32 A stations. The first charges
alone and gets 32 A; then two more cars arrive. Its station refuses the
profile that would lower it, as some real stations do. What every connector
offers (the limit its EV may draw, idle connectors included) must stay within
the zone at every moment, and the others must get what is left.
"""

from __future__ import annotations

import time

import pytest

from apps.energy.allocator import PhaseWiring
from apps.simulator.engine import ArrivalPattern, Drivers, Endpoint, Fleet
from apps.simulator.engine.ev import EvModel
from apps.simulator.engine.model import ConnectorSpec, StationSpec
from tests.e2e.stack import fleet_in_thread, start_stack

pytestmark = pytest.mark.e2e

ZONE_MAX_A = 40.0
STUBBORN, OTHERS = "RF-1", ("RF-2", "RF-3")
SITE = """
site: {{name: Refusing station test, optimisation: {{enabled: false}}}}
zones:
  - {{name: Garage, max_current_a: 40}}
auth_groups:
  - {{name: Open, online: all_cards, offline: authorize_all}}
cards:
  - {{id_tag: RF-TAG, authorized: true, groups: [Open]}}
stations:
{stations}
"""


def _fleet(stack, identities: tuple[str, ...], *, seed: int, arrivals: str) -> Fleet:
    suv = EvModel("SUV 3×32 A", phases=3, max_current_a=32, battery_kwh=200)
    specs = [
        StationSpec(
            identity=identity,
            connectors=(ConnectorSpec(1, PhaseWiring.TRI123, 32.0),),
            configuration={"MeterValueSampleInterval": "2"},
            refuses_decreases=identity == STUBBORN,
        )
        for identity in identities
    ]
    return Fleet.build(
        specs,
        Endpoint(f"ws://127.0.0.1:{stack.ocpp_port}"),
        arrivals=ArrivalPattern.parse(arrivals),
        drivers=Drivers(id_tags=("RF-TAG",), ev_models=(suv,), soc_range=(0.1, 0.2)),
        seed=seed,
    )


def _offered(fleets: list[Fleet]) -> dict[str, float]:
    return {
        identity: connector.offered_a
        for fleet in fleets
        for identity, station in fleet.stations.items()
        for connector in station.connectors.values()
    }


def _wait_for(condition, timeout_s: float, what: str, fleets, stack) -> None:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if condition():
            return
        time.sleep(0.05)
    offered = _offered(fleets)
    raise AssertionError(
        f"{what} not within {timeout_s} s; offered {offered}\n{stack.log()[-3000:]}"
    )


def _assert_within_limit(fleets: list[Fleet], duration_s: float) -> None:
    end = time.monotonic() + duration_s
    while time.monotonic() < end:
        offered = _offered(fleets)
        assert sum(offered.values()) <= ZONE_MAX_A + 1e-6, f"offered {offered} > {ZONE_MAX_A} A"
        time.sleep(0.05)


def test_a_station_that_refuses_decreases_never_overloads_the_zone(tmp_path):
    stations = "\n".join(
        f"  - {{identity: {identity}, name: {identity}, zone: Garage, group: Open, "
        f"connectors: [{{id: 1, phases: TRI123, max_current_a: 32}}]}}"
        for identity in (STUBBORN, *OTHERS)
    )
    (tmp_path / "site.yaml").write_text(SITE.format(stations=stations))
    stack = start_stack(tmp_path, demo=False)
    try:
        imported = stack.manage("site", "import", str(tmp_path / "site.yaml"))
        assert imported.returncode == 0, imported.stderr
        first = _fleet(stack, (STUBBORN,), seed=1, arrivals="all")
        later = _fleet(stack, OTHERS, seed=2, arrivals="none")
        fleets = [first, later]
        with fleet_in_thread(first), fleet_in_thread(later) as later_loop:
            _wait_for(
                lambda: _offered(fleets)[STUBBORN] == 32,
                60,
                "32 A for the first car",
                fleets,
                stack,
            )
            _assert_within_limit(fleets, 2)
            for identity in OTHERS:
                later_loop.call_soon_threadsafe(later.arrive_at, identity)
            # Every connector within the zone from the first moment on.
            _assert_within_limit(fleets, 12)
            # The refusing station keeps its 32 A; the others share what is left.
            _wait_for(
                lambda: sum(_offered(fleets)[i] for i in OTHERS) == ZONE_MAX_A - 32,
                30,
                "the others on what is left",
                fleets,
                stack,
            )
            assert _offered(fleets)[STUBBORN] == 32
            _assert_within_limit(fleets, 5)
        log = stack.manage(
            "shell",
            "-v",
            "0",
            "-c",
            "from apps.devicelog.models import DeviceLogEntry as E; "
            "print(E.objects.filter(event='profile_refused').count())",
        ).stdout
        assert int(log.strip()) >= 1
    finally:
        stack.stop()
