"""Offline current of each connector: what it may draw when evce is out of reach (SPEC §3.8).

Each zone's *safe budget* is what it can give without any meter: a static zone
its limit (with reduction), a dynamic zone ``min(limit, degraded setpoint)``. The
budget is split evenly among the connectors below the zone, and a connector takes
the smallest share over its zone and all ancestors: the offline currents of all
connectors under any zone then add up to at most that zone's budget on every
phase, even if every station falls back at once. A share below the connector's
floor is 0 (it would not let an EV charge anyway).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass

from .capacity import zone_limit_a
from .model import Connector, CurrentType, SiteSettings, Zone
from .tree import ZoneTree
from .units import amps, current_to_power_w, deciamps_down, deciamps_up


@dataclass(frozen=True, slots=True)
class OfflineCurrent:
    """Fallback setpoint of a connector: amps per phase, and watts for DC."""

    key: str
    current_a: float
    power_w: float | None


def zone_safe_budget_a(zone: Zone) -> float:
    """What a zone can always give, whatever its meter says (A per phase)."""
    limit_a = zone_limit_a(zone)
    if zone.dynamic:
        return min(limit_a, zone.degraded_current_a)
    return limit_a


def offline_currents(
    zones: Iterable[Zone], connectors: Iterable[Connector], settings: SiteSettings
) -> tuple[OfflineCurrent, ...]:
    """Offline current of every connector, sorted by key (0 for an unknown zone).

    For a single zone this is SPEC §3.8 exactly: budget / number of connectors in
    the zone. The result is capped by the connector's maximum and rounded down
    to 0.1 A (whole watts for DC).
    """
    tree = ZoneTree(zones)
    connectors = sorted(connectors, key=lambda connector: connector.key)
    for previous, current in itertools.pairwise(connectors):
        if previous.key == current.key:
            raise ValueError(f"duplicate connector {current.key}")
    counts = [0] * len(tree)
    for connector in connectors:
        position = tree.index.get(connector.zone_id)
        if position is not None:
            for zone in tree.chains[position]:
                counts[zone] += 1
    budgets_da = [deciamps_down(zone_safe_budget_a(zone)) for zone in tree.zones]

    results: list[OfflineCurrent] = []
    for connector in connectors:
        position = tree.index.get(connector.zone_id)
        supply_phases = len(connector.wiring.building_phases)
        voltage_v = (
            tree.voltage_v(position, settings.nominal_voltage_v)
            if position is not None
            else settings.nominal_voltage_v
        )
        value_da = 0
        if position is not None:
            value_da = min(budgets_da[zone] // counts[zone] for zone in tree.chains[position])
            if connector.current_type is CurrentType.DC:
                assert connector.max_power_w is not None
                max_a = connector.max_power_w / (voltage_v * supply_phases)
            else:
                assert connector.max_current_a is not None
                max_a = connector.max_current_a
            value_da = min(value_da, deciamps_down(max_a))
            # The EV behind a three-phase connector may be three-phase: use that floor.
            if value_da < deciamps_up(settings.floor_a(supply_phases)):
                value_da = 0
        current_a = amps(value_da)
        power_w = None
        if connector.current_type is CurrentType.DC:
            power_w = float(math.floor(current_to_power_w(current_a, supply_phases, voltage_v)))
        results.append(OfflineCurrent(key=connector.key, current_a=current_a, power_w=power_w))
    return tuple(results)
