"""A fleet of simulated stations with arriving EVs, against a minimal central system."""

from __future__ import annotations

import asyncio

import pytest

from apps.energy.allocator import PhaseWiring
from apps.simulator.engine import (
    ArrivalPattern,
    ConnectorSpec,
    Drivers,
    Endpoint,
    EvModel,
    Fleet,
    ScaledClock,
    StationSpec,
    StationTiming,
    station_specs,
)
from tests.simulator.csms import CentralSystem
from tests.simulator.test_station import run

SINGLE_PHASE_16A = EvModel("test 1×16 A", phases=1, max_current_a=16, battery_kwh=40)


def test_arrival_patterns() -> None:
    assert ArrivalPattern.parse("poisson:90") == ArrivalPattern("poisson", 90.0)
    assert ArrivalPattern.parse("all") == ArrivalPattern("all")
    assert ArrivalPattern.parse("none") == ArrivalPattern("none")
    for bad in ("poisson", "poisson:0", "poisson:x", "sometimes", "all:3"):
        with pytest.raises(ValueError):
            ArrivalPattern.parse(bad)


def test_generated_stations_rotate_their_wiring() -> None:
    specs = station_specs(2, prefix="P-", connectors=2, max_current_a=16, password="secret")
    assert [s.identity for s in specs] == ["P-001", "P-002"]
    wirings = [c.wiring for s in specs for c in s.connectors]
    assert wirings == [
        PhaseWiring.TRI123,
        PhaseWiring.TRI231,
        PhaseWiring.TRI312,
        PhaseWiring.TRI123,
    ]
    assert {c.max_current_a for s in specs for c in s.connectors} == {16}
    assert specs[0].password == "secret"
    fixed = station_specs(1, wiring="MONO2")
    assert fixed[0].connectors[0].wiring == PhaseWiring.MONO2


def test_phase_currents_follow_each_connectors_wiring() -> None:
    async def scenario() -> None:
        async with CentralSystem() as cs:
            specs = [
                StationSpec("A", (ConnectorSpec(1, PhaseWiring.MONO3, 32),)),
                StationSpec("B", (ConnectorSpec(1, PhaseWiring.TRI231, 32),)),
                StationSpec("C", (ConnectorSpec(1, PhaseWiring.TRI123, 32),)),
            ]
            fleet = Fleet.build(
                specs,
                Endpoint(cs.url),
                arrivals=ArrivalPattern("all"),
                drivers=Drivers(id_tags=("T1", "T2"), ev_models=(SINGLE_PHASE_16A,)),
                clock=ScaledClock(40),
                timing=StationTiming(response_timeout_wall_s=5),
                seed=7,
            )
            seen: list[tuple[float, float, float]] = []
            fleet.add_listener(lambda f: seen.append(f.phase_currents_a()))
            running = asyncio.create_task(fleet.run())
            await cs.wait_for(lambda: fleet.status().charging == 3, what="three sessions")
            assert fleet.phase_currents_a(["A"]) == (0, 0, 16)
            assert fleet.phase_currents_a(["B"]) == (0, 16, 0)
            assert fleet.phase_currents_a(["A", "B", "C", "unknown"]) == (16, 16, 16)
            await cs.wait_for(lambda: (16, 16, 16) in seen, what="the listener")
            status = fleet.status()
            assert (status.accepted, status.evs, status.total_current_a) == (3, 3, 48)
            fleet.request_stop()
            await asyncio.wait_for(running, 10)

            stops = [m.payload for m in cs.received if m.action == "StopTransaction"]
            assert sorted(m.identity for m in cs.received if m.action == "StopTransaction") == [
                "A",
                "B",
                "C",
            ]
            assert {stop["reason"] for stop in stops} == {"Other"}
            assert {
                p["id_tag"]
                for m in cs.received
                if m.action == "StartTransaction"
                for p in [m.payload]
            } <= {"T1", "T2"}

    run(scenario)


def test_poisson_arrivals_fill_free_connectors() -> None:
    async def scenario() -> None:
        async with CentralSystem() as cs:
            fleet = Fleet.build(
                station_specs(2, connectors=2),
                Endpoint(cs.url),
                arrivals=ArrivalPattern("poisson", 20),
                drivers=Drivers(dwell_mean_s=200),
                clock=ScaledClock(50),
                seed=3,
            )
            await fleet.run(duration_s=400)
            starts = [m for m in cs.received if m.action == "StartTransaction"]
            assert len(starts) >= 4
            assert fleet.status().sessions_started == len(starts)

    run(scenario)
