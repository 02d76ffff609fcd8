"""Short builders for hand-written allocator examples."""

from __future__ import annotations

from typing import Any

from apps.energy.allocator import (
    Allocation,
    Connector,
    CurrentType,
    PhaseWiring,
    Ranking,
    Reserve,
    Session,
    SiteSettings,
    SiteSnapshot,
    Zone,
    allocate,
)

NOW_S = 1_750_000_000.0


def ac(
    key: str,
    zone_id: int = 1,
    *,
    max_a: float = 32.0,
    wiring: PhaseWiring = PhaseWiring.TRI123,
    **fields: Any,
) -> Session:
    """An AC session on connector ``key``."""
    connector = Connector(key=key, zone_id=zone_id, wiring=wiring, max_current_a=max_a)
    return Session(connector=connector, **fields)


def dc(
    key: str,
    zone_id: int = 1,
    *,
    max_w: float,
    wiring: PhaseWiring = PhaseWiring.TRI123,
    **fields: Any,
) -> Session:
    """A DC session on connector ``key``."""
    connector = Connector(
        key=key, zone_id=zone_id, wiring=wiring, current_type=CurrentType.DC, max_power_w=max_w
    )
    return Session(connector=connector, **fields)


def static(zone_id: int, max_a: float, parent_id: int | None = None, **fields: Any) -> Zone:
    return Zone(zone_id=zone_id, max_current_a=max_a, parent_id=parent_id, **fields)


def dynamic(
    zone_id: int,
    max_a: float,
    meter_a: float | tuple[float, float, float] | None,
    parent_id: int | None = None,
    **fields: Any,
) -> Zone:
    meter = (meter_a, meter_a, meter_a) if isinstance(meter_a, int | float) else meter_a
    return Zone(
        zone_id=zone_id,
        max_current_a=max_a,
        parent_id=parent_id,
        dynamic=True,
        meter_current_a=meter,
        **fields,
    )


def run(
    zones: list[Zone],
    sessions: list[Session],
    *,
    settings: SiteSettings | None = None,
    reserves: tuple[Reserve, ...] = (),
    previous: Ranking | None = None,
    now_s: float = NOW_S,
    capacity_changed: bool = False,
) -> Allocation:
    return allocate(
        SiteSnapshot(
            now_s=now_s,
            zones=tuple(zones),
            sessions=tuple(sessions),
            reserves=reserves,
            settings=settings or SiteSettings(),
            previous_ranking=previous,
            capacity_changed=capacity_changed,
        )
    )


def setpoints(allocation: Allocation) -> dict[str, float]:
    return {item.key: item.setpoint_a for item in allocation.sessions}
