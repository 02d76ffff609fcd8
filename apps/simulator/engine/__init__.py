"""The simulation engine: plain Python (no Django), usable from tests, scripts and benchmarks.

Public API:

* ``StationSim`` — one OCPP 1.6-J charge point (``StationSpec``, ``ConnectorSpec``,
  ``Endpoint``, ``StationTiming``);
* ``Fleet`` — stations plus arriving EVs (``ArrivalPattern``, ``Drivers``), with
  ``Fleet.phase_currents_a(station_ids)`` for meter simulators and
  ``Fleet.add_listener`` to be called every simulated second;
* ``Ev``/``EvModel`` — the charging curve;
* ``ProfileStore`` — the charging-profile logic;
* ``ScaledClock`` — simulated time, optionally faster than real time.
"""

from apps.simulator.engine.clock import Clock, ScaledClock
from apps.simulator.engine.ev import EV_CATALOGUE, Ev, EvModel, random_ev
from apps.simulator.engine.fleet import ArrivalPattern, Drivers, Fleet, FleetStatus, station_specs
from apps.simulator.engine.model import ConnectorSpec, Endpoint, StationSpec, StationTiming
from apps.simulator.engine.profiles import ChargingProfile, ConnectorContext, ProfileStore
from apps.simulator.engine.station import StationSim
from apps.simulator.engine.wiring import PhaseCurrents

__all__ = [
    "EV_CATALOGUE",
    "ArrivalPattern",
    "ChargingProfile",
    "Clock",
    "ConnectorContext",
    "ConnectorSpec",
    "Drivers",
    "Endpoint",
    "Ev",
    "EvModel",
    "Fleet",
    "FleetStatus",
    "PhaseCurrents",
    "ProfileStore",
    "ScaledClock",
    "StationSim",
    "StationSpec",
    "StationTiming",
    "random_ev",
    "station_specs",
]
