"""Offline (fallback) current of connectors and reserves of disconnected stations (SPEC §3.8)."""

from __future__ import annotations

from typing import Any

from apps.energy.allocator import (
    Connector,
    CurrentType,
    FloorMode,
    PhaseWiring,
    Reduction,
    ReductionSource,
    SiteSettings,
    Zone,
    offline_currents,
    reserve_for_connector,
)

from .helpers import dynamic, static


def _connectors(zone_id: int, count: int, prefix: str = "c") -> list[Connector]:
    return [Connector(key=f"{prefix}{n}", zone_id=zone_id, max_current_a=32) for n in range(count)]


def _offline(zones: list[Zone], connectors: list[Connector], **settings: Any) -> dict[str, float]:
    result = offline_currents(zones, connectors, SiteSettings(**settings))
    return {item.key: item.current_a for item in result}


def test_static_zone_splits_its_reduced_limit() -> None:
    """63 A at 80 % over four connectors: 50.4 / 4 = 12.6 A."""
    zone = static(1, 63, reductions=(Reduction(source=ReductionSource.TOU, percent=80),))
    assert set(_offline([zone], _connectors(1, 4)).values()) == {12.6}


def test_dynamic_zone_splits_its_degraded_setpoint() -> None:
    zone = dynamic(1, 100, 40, degraded_current_a=30)
    assert set(_offline([zone], _connectors(1, 5)).values()) == {6.0}


def test_a_share_below_the_floor_is_zero() -> None:
    zone = dynamic(1, 100, 40, degraded_current_a=30)
    assert set(_offline([zone], _connectors(1, 6)).values()) == {0.0}
    # 10 A each is enough for IEC 61851 but not for a three-phase EV in EV/ZE mode.
    assert set(
        _offline([static(1, 20)], _connectors(1, 2), floor_mode=FloorMode.EVZE).values()
    ) == {0.0}


def test_the_connector_maximum_caps_the_offline_current() -> None:
    assert _offline([static(1, 100)], _connectors(1, 1)) == {"c0": 32.0}


def test_every_ancestor_bounds_the_offline_currents() -> None:
    """Two 63 A sub-zones under a 40 A board, two connectors each: 10 A each, not 31.5 A."""
    zones = [static(1, 40), static(2, 63, parent_id=1), static(3, 63, parent_id=1)]
    connectors = _connectors(2, 2, "a") + _connectors(3, 2, "b")
    assert set(_offline(zones, connectors).values()) == {10.0}


def test_dc_offline_current_is_also_given_in_watts() -> None:
    connector = Connector(key="dc", zone_id=1, current_type=CurrentType.DC, max_power_w=50_000)
    (result,) = offline_currents([static(1, 20)], [connector], SiteSettings())
    assert result.current_a == 20.0
    assert result.power_w == 13_800.0


def test_reserve_of_an_offline_connector_covers_every_phase_of_its_wiring() -> None:
    mono = Connector(key="m", zone_id=3, wiring=PhaseWiring.MONO2, max_current_a=32)
    assert reserve_for_connector(mono, current_a=10).current_a == (0.0, 10.0, 0.0)
    tri = Connector(key="t", zone_id=3, wiring=PhaseWiring.TRI231, max_current_a=32)
    reserve = reserve_for_connector(tri, current_a=10)
    assert reserve.current_a == (10.0, 10.0, 10.0)
    assert (reserve.zone_id, reserve.key) == (3, "t")


def test_reserve_of_a_dc_station_is_its_last_setpoint_in_amps() -> None:
    connector = Connector(key="dc", zone_id=1, current_type=CurrentType.DC, max_power_w=50_000)
    reserve = reserve_for_connector(connector, power_w=13_800, nominal_voltage_v=230)
    assert reserve.current_a == (20.0, 20.0, 20.0)
