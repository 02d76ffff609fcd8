"""Hypothesis strategies: random sites for the allocator.

A site is a zone tree (up to 20 zones, 4 levels, static or dynamic, lost meters,
meters net of production, production, reductions, imbalance limits), reserves,
and up to 60 sessions with random wiring, phases, AC/DC, VIP, history,
measurements and last setpoints.

Zones and sessions are decoded from one drawn byte string each rather than from
hundreds of separate draws: that is some 40 times faster to generate, which is
what lets thousands of examples run in CI, and it still shrinks well because
every decoder maps zero bytes to the simplest choice (``None``, ``False``, the
first option, 0 A) and missing bytes read as zeros.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from typing import TypeVar

from hypothesis import strategies as st

from apps.energy.allocator import (
    Connector,
    CurrentType,
    FloorMode,
    PhaseWiring,
    Priority,
    ProductionMode,
    Ranking,
    Reason,
    Reduction,
    ReductionSource,
    Reserve,
    Session,
    SiteSettings,
    SiteSnapshot,
    Zone,
    zone_limit_a,
)
from apps.energy.allocator.units import deciamps_down

NOW_S = 1_750_000_000.0
ZONE_BYTES = 74
SESSION_BYTES = 54
RESERVE_BYTES = 8

T = TypeVar("T")


class Decoder:
    """Reads typed random choices from bytes; zero bytes give the simplest value."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.position = 0

    def byte(self) -> int:
        position = self.position
        self.position += 1
        return self.data[position] if position < len(self.data) else 0

    def word(self) -> int:
        return self.byte() << 8 | self.byte()

    def pick(self, options: Sequence[T]) -> T:
        return options[self.byte() % len(options)]

    def chance(self, one_in: int) -> bool:
        """True with probability ``1 / one_in`` (False for a zero byte)."""
        return self.byte() % one_in == one_in - 1

    def maybe(self, make: Callable[[], T], none_one_in: int = 4) -> T | None:
        """``None`` with probability ``1 / none_one_in`` (and for a zero byte)."""
        return None if self.byte() % none_one_in == 0 else make()

    def amps(self, max_a: float) -> float:
        """0..max_a: mostly 0.1 A steps, else 0.01 A steps or thirds (never round)."""
        kind, value = self.byte() % 4, self.word()
        if kind == 3:
            return (value % int(max_a * 100 + 1)) / 100
        if kind == 2:
            return (value % int(max_a * 3 + 1)) / 3
        return (value % int(max_a * 10 + 1)) / 10

    def phase_amps(self, max_a: float) -> tuple[float, float, float]:
        if self.chance(2):
            return (self.amps(max_a), self.amps(max_a), self.amps(max_a))
        value = self.amps(max_a)
        return (value, value, value)


def _reductions(decoder: Decoder) -> tuple[Reduction, ...]:
    if not decoder.chance(4):
        return ()
    result = []
    for _ in range(1 + decoder.byte() % 3):
        if decoder.chance(3):
            result.append(Reduction(source=ReductionSource.EBMS, current_a=decoder.amps(200)))
        else:
            source = decoder.pick(list(ReductionSource))
            result.append(Reduction(source=source, percent=float(decoder.byte() % 101)))
    return tuple(result)


@st.composite
def site_settings(draw: st.DrawFn, *, deadband: bool = True) -> SiteSettings:
    decoder = Decoder(draw(st.binary(min_size=8, max_size=8)))
    return SiteSettings(
        floor_mode=decoder.pick(list(FloorMode)),
        priority=decoder.pick(list(Priority)),
        production_mode=decoder.pick(list(ProductionMode)),
        optimisation_enabled=decoder.chance(2),
        idle_suspension_enabled=decoder.chance(2),
        nominal_voltage_v=decoder.pick([230.0, 220.0, 240.0]),
        deadband_a=1.0 if deadband else 0.0,
    )


@st.composite
def zone_trees(
    draw: st.DrawFn, *, min_zones: int = 1, max_zones: int = 20, imbalance: bool = True
) -> tuple[Zone, ...]:
    count = draw(st.integers(min_zones, max_zones))
    ids = draw(st.lists(st.integers(1, 9999), min_size=count, max_size=count, unique=True))
    decoder = Decoder(draw(st.binary(min_size=count * ZONE_BYTES, max_size=count * ZONE_BYTES)))
    depths: list[int] = []
    zones: list[Zone] = []
    for position, zone_id in enumerate(ids):
        parent_position = None
        candidates = [p for p in range(position) if depths[p] < 3]
        # Mostly one tree; sometimes a second top zone.
        if candidates and not decoder.chance(10):
            parent_position = decoder.pick(candidates)
        depths.append(0 if parent_position is None else depths[parent_position] + 1)
        dynamic = decoder.chance(2)
        has_production = decoder.chance(4)
        # With or without the zone's production meter: safe either way.
        net = dynamic and decoder.chance(3)
        max_current_a = decoder.pick([100.0, 63.0, decoder.amps(400), 250.0])
        # Meter readings mostly below the zone maximum, sometimes above (overload).
        meter_max_a = min(500.0, max_current_a * 1.2 + 5)
        meter_a = decoder.maybe(partial(decoder.phase_amps, meter_max_a)) if dynamic else None
        if net and meter_a is not None and decoder.chance(2):
            # A meter net of production reads below 0 while the zone exports.
            export_a = decoder.phase_amps(150)
            meter_a = (
                meter_a[0] - export_a[0],
                meter_a[1] - export_a[1],
                meter_a[2] - export_a[2],
            )
        zones.append(
            Zone(
                zone_id=zone_id,
                parent_id=None if parent_position is None else ids[parent_position],
                max_current_a=max_current_a,
                dynamic=dynamic,
                degraded_current_a=decoder.amps(max_current_a),
                meter_current_a=meter_a,
                has_production_meter=has_production,
                production_current_a=(
                    decoder.maybe(lambda: decoder.phase_amps(150)) if has_production else None
                ),
                meter_net_of_production=net,
                reductions=_reductions(decoder),
                phase_imbalance_limit_a=(
                    decoder.amps(60) if imbalance and decoder.chance(4) else None
                ),
                nominal_voltage_v=decoder.pick([None, None, None, 230.0, 240.0]),
                previous_other_loads_a=decoder.maybe(
                    partial(decoder.phase_amps, meter_max_a), none_one_in=2
                ),
                held_meter_current_a=decoder.maybe(
                    partial(decoder.phase_amps, meter_max_a), none_one_in=2
                ),
            )
        )
    return tuple(zones)


@st.composite
def sessions_for(
    draw: st.DrawFn, zones: tuple[Zone, ...], *, min_sessions: int = 0, max_sessions: int = 60
) -> tuple[Session, ...]:
    count = draw(st.integers(min_sessions, max_sessions))
    decoder = Decoder(
        draw(st.binary(min_size=count * SESSION_BYTES, max_size=count * SESSION_BYTES))
    )
    zone_ids = [zone.zone_id for zone in zones]
    result = []
    for number in range(count):
        current_type = CurrentType.DC if decoder.chance(3) else CurrentType.AC
        connector = Connector(
            key=f"CP{number:03d}/1",
            zone_id=decoder.pick(zone_ids),
            wiring=decoder.pick(list(PhaseWiring)),
            current_type=current_type,
            max_current_a=(
                decoder.pick([16.0, 32.0, decoder.amps(80), 63.0])
                if current_type is CurrentType.AC
                else None
            ),
            max_power_w=float(decoder.word() * 3) if current_type is CurrentType.DC else None,
        )
        last_setpoint = decoder.maybe(lambda: decoder.amps(80))
        result.append(
            Session(
                connector=connector,
                vip=decoder.chance(5),
                energy_wh=float(decoder.word()),
                charging_duration_s=float(decoder.word()),
                ev_phases=decoder.pick([None, 1, 3, 2]),
                measured_current_a=decoder.maybe(lambda: decoder.phase_amps(80)),
                last_setpoint_a=last_setpoint,
                last_setpoint_at_s=(
                    None if last_setpoint is None else NOW_S - decoder.word() % 601
                ),
                last_reason=decoder.pick([None, Reason.EV_DEMAND, Reason.ZONE_LIMIT]),
                idle_since_s=decoder.maybe(lambda: NOW_S - decoder.word() % 5001, none_one_in=2),
                drawing_cap_a=decoder.maybe(lambda: decoder.amps(80), none_one_in=2),
                ramp_current_a=decoder.maybe(lambda: decoder.phase_amps(80), none_one_in=2),
            )
        )
    return tuple(result)


def capacity_signature_of(zones: tuple[Zone, ...]) -> str:
    """The signature the allocator computes when nothing but readings changed."""
    parts = [
        f"{zone.zone_id}:{deciamps_down(zone_limit_a(zone))}:{'lost' if zone.meter_lost else 'ok'}"
        for zone in sorted(zones, key=lambda z: z.zone_id)
    ]
    return ",".join(parts)


@st.composite
def sites(
    draw: st.DrawFn,
    *,
    min_zones: int = 1,
    max_zones: int = 20,
    min_sessions: int = 0,
    max_sessions: int = 60,
    imbalance: bool = True,
    deadband: bool = True,
) -> SiteSnapshot:
    zones = draw(zone_trees(min_zones=min_zones, max_zones=max_zones, imbalance=imbalance))
    sessions = draw(sessions_for(zones, min_sessions=min_sessions, max_sessions=max_sessions))
    reserve_count = draw(st.integers(0, 5))
    decoder = Decoder(
        draw(
            st.binary(
                min_size=reserve_count * RESERVE_BYTES, max_size=reserve_count * RESERVE_BYTES
            )
        )
    )
    reserves = tuple(
        Reserve(
            zone_id=decoder.pick([zone.zone_id for zone in zones]),
            current_a=decoder.phase_amps(40),
            key=f"R{number}",
        )
        for number in range(reserve_count)
    )
    previous = None
    with_previous_ranking = draw(st.booleans())
    if sessions and with_previous_ranking:
        keys = [s.key for s in sessions]
        random.Random(draw(st.integers(0, 2**32))).shuffle(keys)
        previous = Ranking(
            keys=tuple(keys),
            ranked_at_s=NOW_S - draw(st.integers(0, 1200)),
            capacity_signature=capacity_signature_of(zones),
        )
    return SiteSnapshot(
        now_s=NOW_S,
        zones=zones,
        sessions=sessions,
        reserves=reserves,
        settings=draw(site_settings(deadband=deadband)),
        previous_ranking=previous,
        capacity_changed=draw(st.integers(0, 9)) == 0,
    )


def connectors_for(zones: tuple[Zone, ...], data: bytes, count: int) -> tuple[Connector, ...]:
    """AC connectors spread over ``zones``, decoded from ``data``."""
    decoder = Decoder(data)
    return tuple(
        Connector(
            key=f"C{number}",
            zone_id=decoder.pick([zone.zone_id for zone in zones]),
            wiring=decoder.pick(list(PhaseWiring)),
            max_current_a=decoder.amps(63),
        )
        for number in range(count)
    )


def without_history(site: SiteSnapshot) -> SiteSnapshot:
    """The same site with no last setpoints (no deadband, no optimisation) nor held estimates."""
    return replace(
        site,
        zones=tuple(
            replace(
                zone,
                previous_other_loads_a=None,
                held_meter_current_a=None,
            )
            for zone in site.zones
        ),
        sessions=tuple(
            replace(
                s,
                last_setpoint_a=None,
                last_setpoint_at_s=None,
                last_reason=None,
                drawing_cap_a=None,
                ramp_current_a=None,
            )
            for s in site.sessions
        ),
    )
