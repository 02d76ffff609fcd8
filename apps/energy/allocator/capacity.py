"""Available current of each zone and phase (SPEC §3.2, §3.5).

Per phase, with ``limit = max_current × reduction`` and ``other_loads`` from the
meter (0 for a static zone)::

    grid only:   available = min(limit, max_current − other_loads)
    grid+local:  available = min(limit, max_current − other_loads) + production
    local only:  available = min(limit, production − other_loads)
    meter lost:  available = min(limit, degraded)          (no production)

Without a reduction this is SPEC §3.2 word for word. With one, SPEC §3.5 says the
reduction caps the limit and "the result is the lower of the two", and its
examples (100 A at 70 % with 90 A left by the meter → 70 A; with 50 A left → 50 A)
only hold if the reduction caps the current left for charging, not the zone's
total: hence ``min(limit, max_current − other_loads)``. The zone's total never
exceeds ``max_current`` either way.

Fail-closed choices, all in the safe direction:

- a lost meter is never read as 0 A: the zone runs on ``min(limit, degraded)``
  and its production is not counted;
- other loads are never negative (a meter reading below the chargers' own
  measurements, a timing skew, does not create current), except on a meter
  net of production (below);
- chargers without a reading are not subtracted from the meter, so their current
  counts as building load; a charger is subtracted at no more than it surely
  draws: not a raised setpoint it may still be ramping up to, and not a sample
  it may have dipped below since (a fall of the meter is credited to the
  building only once the samples could show it, see :func:`other_loads_da`);
- a disconnected station's actual current is inside the meter reading *and* its
  reserve is held on top, because the two cannot be told apart;
- production (clamped at 0) only counts for a zone that has a production meter,
  and only while that meter reads; reductions never apply to it.
- under "local only", a zone with no production meter on itself or an
  ancestor has nothing to charge from: 0 A, never the grid.

A meter net of production (:attr:`Zone.meter_net_of_production`) reads
building + chargers − production, so ``meter − chargers`` is the building
*minus* production, negative while the zone exports; it is kept signed, since
clamping it at 0 would drop the production. Subtracting it as other loads and
then adding production would count the production twice, and the zone could
carry that much more than its maximum. So, with the zone's production reading
``P`` and ``net_other = meter − chargers``::

    building = max(0, net_other + P)        then the formulas above, unchanged

which is the SPEC's rule with the building load it was written for: "grid
only" still gives no production (the zone stays within its maximum even if
the production stops at once), "grid+local" adds it once, "local only" gives
the surplus ``P − building``. Without a production reading (its meter lost)
the building load is unknown, only ``net_other`` is:

- grid only: the zone runs on its degraded setpoint, as with a lost meter:
  reading ``net_other`` as the building load would give out the production
  the mode withholds (and lose it all at once if the production stopped);
- grid+local: ``min(limit, max_current − net_other)``: the meter measures
  the grid current the mode keeps under ``max_current`` exactly; as the
  production's share cannot be told, the reduction caps all of it (never
  more than with the reading: ``min(limit, max − building) + P`` is
  ``min(limit + P, max − net_other)``);
- local only: ``min(limit, −net_other)``, the surplus the meter shows going
  out, which is what "local only" gives with the reading too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .model import ProductionMode, Reduction, ReductionSource, Zone
from .units import deciamps_down, deciamps_up


def _applicable_reductions(zone: Zone) -> tuple[Reduction, ...]:
    """Active reductions that count: an active external input overrides TOU periods."""
    if any(r.source is ReductionSource.INPUT for r in zone.reductions):
        return tuple(r for r in zone.reductions if r.source is not ReductionSource.TOU)
    return zone.reductions


def effective_reduction_percent(zone: Zone) -> float | None:
    """The lowest applicable percentage of ``max_current_a`` (``None``: no % reduction)."""
    percents = [r.percent for r in _applicable_reductions(zone) if r.percent is not None]
    return min(100.0, *percents) if percents else None


def zone_limit_a(zone: Zone) -> float:
    """``max_current × reduction``, also capped by absolute-current reductions (A per phase)."""
    reductions = _applicable_reductions(zone)
    limit_a = zone.max_current_a
    percent = effective_reduction_percent(zone)
    if percent is not None:
        limit_a = zone.max_current_a * percent / 100.0
    caps = [r.current_a for r in reductions if r.current_a is not None]
    if caps:
        limit_a = min(limit_a, *caps)
    return max(0.0, limit_a)


@dataclass(frozen=True, slots=True)
class ZoneCapacity:
    """What a zone can give to charging, per phase, in deciamps (see ``units``).

    ``meter_lost``: the zone runs on its degraded setpoint (its meter is lost,
    or under "grid only" it is net of a production that cannot be read).
    ``other_loads_da``: the meter minus the chargers (``None``: static or meter
    lost), net of production for a net meter. ``production_da``: the
    production counted in ``available_da``; the rest comes from the grid.
    """

    limit_da: int
    meter_lost: bool
    production_lost: bool
    other_loads_da: tuple[int, int, int] | None
    production_da: tuple[int, int, int]
    available_da: tuple[int, int, int]
    held_meter_da: tuple[int, int, int] | None = None


def zone_capacity(
    zone: Zone,
    measured_below_da: Sequence[int],
    production_mode: ProductionMode,
    *,
    excess_below_da: Sequence[int] = (0, 0, 0),
    chain_has_production_meter: bool | None = None,
) -> ZoneCapacity:
    """Available current of ``zone`` for each phase, exactly as SPEC §3.2.

    ``measured_below_da`` is the measured current (deciamps, rounded down) of the
    connected chargers below the zone, per phase, each at most its setpoint in
    force; ``excess_below_da`` what their samples show above that setpoint
    (see :func:`other_loads_da`). The result is never negative.
    ``chain_has_production_meter`` tells whether the zone or an ancestor has a
    production meter (``None``: only the zone's own meter is known). Under
    "local only", a zone without one has no production to charge from and gets
    0 A rather than the grid; a zone below a production meter is bounded by
    that ancestor's production.
    """
    limit_da = deciamps_down(zone_limit_a(zone))
    if zone.meter_lost:
        degraded_da = max(0, min(limit_da, deciamps_down(zone.degraded_current_a)))
        return ZoneCapacity(
            limit_da=limit_da,
            meter_lost=True,
            production_lost=zone.has_production_meter and zone.production_current_a is None,
            other_loads_da=None,
            production_da=(0, 0, 0),
            available_da=(degraded_da, degraded_da, degraded_da),
        )

    other: tuple[int, int, int] | None = None
    held: tuple[int, int, int] | None = None
    other_list = [0, 0, 0]
    net_meter = zone.dynamic and zone.meter_net_of_production
    if zone.dynamic:
        assert zone.meter_current_a is not None
        previous = zone.previous_other_loads_a
        held_meter = zone.held_meter_current_a
        for phase in range(3):
            other_list[phase] = other_loads_da(
                deciamps_up(zone.meter_current_a[phase]),
                measured_below_da[phase],
                None if previous is None else deciamps_up(previous[phase]),
                None if held_meter is None else deciamps_up(held_meter[phase]),
                excess_below_da[phase],
                net_of_production=net_meter,
            )
        other = (other_list[0], other_list[1], other_list[2])
        held = (
            other_list[0] + measured_below_da[0],
            other_list[1] + measured_below_da[1],
            other_list[2] + measured_below_da[2],
        )

    if chain_has_production_meter is None:
        chain_has_production_meter = zone.has_production_meter
    no_production_source = (
        production_mode is ProductionMode.LOCAL and not chain_has_production_meter
    )
    production_lost = zone.has_production_meter and zone.production_current_a is None
    produced = [0, 0, 0]
    if zone.has_production_meter and zone.production_current_a is not None:
        produced = [max(0, deciamps_down(value)) for value in zone.production_current_a]
    production_read = zone.has_production_meter and not production_lost
    uses_production = zone.has_production_meter and production_mode is not ProductionMode.GRID
    production = produced if uses_production else [0, 0, 0]
    # Building loads for the formulas: a net meter gets its production added back
    # (rounded up there, down where it is given out: both on the safe side).
    building = other_list
    if net_meter and zone.has_production_meter and zone.production_current_a is not None:
        building = [
            max(0, other_list[phase] + max(0, deciamps_up(zone.production_current_a[phase])))
            for phase in range(3)
        ]

    max_da = deciamps_down(zone.max_current_a)
    available = [0, 0, 0]
    if net_meter and not production_read and not no_production_source:
        # Only building − production is known (see the module docstring).
        if production_mode is ProductionMode.GRID:
            degraded_da = max(0, min(limit_da, deciamps_down(zone.degraded_current_a)))
            return ZoneCapacity(
                limit_da=limit_da,
                meter_lost=True,
                production_lost=production_lost,
                other_loads_da=other,
                production_da=(0, 0, 0),
                available_da=(degraded_da, degraded_da, degraded_da),
                held_meter_da=held,
            )
        for phase in range(3):
            if production_mode is ProductionMode.GRID_LOCAL:
                value = min(limit_da, max_da - other_list[phase])
            else:  # local only: the surplus the meter shows going out is production
                value = min(limit_da, -other_list[phase])
                production[phase] = max(0, value)
            available[phase] = max(0, value)
    else:
        for phase in range(3):
            # The meter keeps the zone under its maximum; the reduction caps what is
            # left for charging (SPEC §3.5: "the result is the lower of the two").
            grid_da = min(limit_da, max_da - building[phase])
            if no_production_source:
                value = 0
            elif not uses_production:
                value = grid_da
            elif production_mode is ProductionMode.GRID_LOCAL:
                value = grid_da + production[phase]
            else:  # local only: green charging, production minus what the building uses
                value = min(limit_da, production[phase] - building[phase])
            available[phase] = max(0, value)

    return ZoneCapacity(
        limit_da=limit_da,
        meter_lost=False,
        production_lost=production_lost,
        other_loads_da=other,
        production_da=(production[0], production[1], production[2]),
        available_da=(available[0], available[1], available[2]),
        held_meter_da=held,
    )


def other_loads_da(
    meter_da: int,
    counted_below_da: int,
    previous_da: int | None,
    held_meter_da: int | None,
    excess_below_da: int = 0,
    *,
    net_of_production: bool = False,
) -> int:
    """The zone's own loads on one phase: the meter minus its chargers (SPEC §3.2).

    Never negative for a meter of consumption (a reading below the chargers is
    a timing skew); for a meter net of production (``net_of_production``) a
    negative result is the production the zone exports, and is kept.

    Never below ``high``, the meter minus what the chargers surely draw
    (``counted_below_da``: samples, each at most the setpoint in force), so a
    rise of the building is seen at the first reading that shows it. An EV
    ramping up to a raised setpoint is not subtracted beyond its sample: its
    ramp counts as other load until a sample shows it, and nothing holds the
    estimate below that (raises keep room for it instead, see
    ``transition.admit_raises``).

    A sample also lags a dip: an EV may draw less than its last sample, and
    the meter then falls though the building did not. Crediting that fall to
    the building would hand the EV's current to others, and overload the zone
    when the EV draws again. So a fall of the meter below ``held_meter_da``
    (the level the previous estimate ``previous_da`` stood for) keeps the
    estimate up to ``previous_da``: the chargers count only for what they
    surely draw had they dipped by the whole fall. Only by the part of it
    that samples above the setpoints in force (``excess_below_da``) do not
    explain: EVs coming down to a lower setpoint do not dip below what they
    are counted for, and the excess they still draw is inside ``high``. The
    caller stops passing the hold once the stations have had time to send a
    sample showing any dip. The hold never puts the estimate above the meter.
    """
    high = meter_da - counted_below_da
    if not net_of_production:
        high = max(0, high)
    estimate = high
    if previous_da is not None and held_meter_da is not None:
        unexplained_da = max(0, held_meter_da - meter_da - excess_below_da)
        surely_drawn_da = max(0, counted_below_da - unexplained_da)
        estimate = max(high, min(previous_da, meter_da - surely_drawn_da))
    return estimate


def capacity_signature(zone_ids: Sequence[int], capacities: Sequence[ZoneCapacity]) -> str:
    """A short text that changes when a zone's limit or meter state changes.

    Used to re-rank priorities on a capacity change (reduction, configuration,
    meter lost or back) but not on every fluctuation of the building load.
    """
    parts = []
    for zone_id, capacity in zip(zone_ids, capacities, strict=True):
        state = "lost" if capacity.meter_lost else "ok"
        parts.append(f"{zone_id}:{capacity.limit_da}:{state}")
    return ",".join(parts)
