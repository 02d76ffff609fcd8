"""Inputs and outputs of the allocator: frozen, typed, unit-suffixed dataclasses.

Everything the allocator needs is in a :class:`SiteSnapshot` (settings, zone tree
with meter readings, charging sessions, reserves of disconnected stations, the
previous ranking and the current time); everything it decides is in an
:class:`Allocation`. Constructors validate what they can check alone (finite
numbers, consistent options) and raise ``ValueError`` otherwise, so bad data is
refused where it is built instead of being silently read as 0 A.

Per-phase values are ``(L1, L2, L3)`` tuples in the building's phase order.
Times are epoch seconds (``float``); the allocator never reads a clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any, NamedTuple

PhaseAmps = tuple[float, float, float]
"""A current per building phase, ``(L1, L2, L3)``, in amps."""


class FloorMode(StrEnum):
    """Minimum current an EV needs to charge (IEC 61851 or "EV/ZE ready")."""

    IEC61851 = "iec61851"
    EVZE = "evze"


class Priority(StrEnum):
    """Which sessions keep charging when not all can get their floor."""

    ENERGY = "energy"
    DURATION = "duration"


class ProductionMode(StrEnum):
    """How a zone's local production (solar) counts towards its available current."""

    GRID = "grid"
    GRID_LOCAL = "grid+local"
    LOCAL = "local"


class PhaseWiring(StrEnum):
    """How a connector's phases are wired to the building's phases (SPEC §2.3)."""

    MONO1 = "MONO1"
    MONO2 = "MONO2"
    MONO3 = "MONO3"
    TRI123 = "TRI123"
    TRI231 = "TRI231"
    TRI312 = "TRI312"

    @property
    def building_phases(self) -> tuple[int, ...]:
        """Building phase indexes (0 = L1) fed by the connector's 1st, 2nd, 3rd phase."""
        return _WIRING_PHASES[self]


_WIRING_PHASES: dict[PhaseWiring, tuple[int, ...]] = {
    PhaseWiring.MONO1: (0,),
    PhaseWiring.MONO2: (1,),
    PhaseWiring.MONO3: (2,),
    PhaseWiring.TRI123: (0, 1, 2),
    PhaseWiring.TRI231: (1, 2, 0),
    PhaseWiring.TRI312: (2, 0, 1),
}


class CurrentType(StrEnum):
    """AC connectors are driven in amps, DC connectors in watts."""

    AC = "AC"
    DC = "DC"


class Phase(IntEnum):
    """A building phase, as shown to users."""

    L1 = 1
    L2 = 2
    L3 = 3


class ReductionSource(StrEnum):
    """Where a reduction of a zone's maximum comes from (SPEC §3.5)."""

    TOU = "tou"
    INPUT = "input"
    EBMS = "ebms"


class Reason(StrEnum):
    """Why a connector got its setpoint: what stopped it from getting more.

    Charging reasons (setpoint > 0):

    - ``CONNECTOR_MAX``: at the connector's maximum current (or power, for DC).
    - ``EV_DEMAND``: capped at the EV's consumption + reduction gap (optimisation).
    - ``ZONE_LIMIT``: a zone phase is full (``limiting_zone_id``/``limiting_phase``).
    - ``DEGRADED``: same, in a zone whose meter is lost (running on its degraded setpoint).
    - ``IMBALANCE_LIMIT``: the zone's phase-imbalance limit stops it.
    - ``FLOOR``: holds its floor; the limiting zone phase has nothing more to give.

    Suspended reasons (setpoint 0, "suspended by system"):

    - ``SHED_PRIORITY``: its floor does not fit because higher-priority sessions
      (VIP or better ranked) use the limiting zone phase.
    - ``NO_CAPACITY``: the limiting zone phase cannot give its floor even to it alone.
    - ``IMBALANCE_LIMIT``: its floor would break the zone's phase-imbalance limit.
    - ``CONNECTOR_MAX``: the connector's maximum is below the floor.
    - ``IDLE_SUSPENDED``: drew less than the idle threshold for too long; offered
      current again at each wake-up.
    - ``INVALID_INPUT``: its zone is unknown; failing closed.

    Set by the control loop, never by the allocator:

    - ``HELD``: its station did not apply evce's last profile (refused, no
      answer, or unknown since it connected); it is budgeted at what it may
      draw and asked again.
    """

    CONNECTOR_MAX = "connector_max"
    EV_DEMAND = "ev_demand"
    ZONE_LIMIT = "zone_limit"
    DEGRADED = "degraded"
    IMBALANCE_LIMIT = "imbalance_limit"
    FLOOR = "floor"
    SHED_PRIORITY = "shed_priority"
    NO_CAPACITY = "no_capacity"
    IDLE_SUSPENDED = "idle_suspended"
    INVALID_INPUT = "invalid_input"
    HELD = "held"


def _check_finite(owner: str, name: str, value: float | None) -> None:
    if value is not None and not math.isfinite(value):
        raise ValueError(f"{owner}.{name} must be a finite number, got {value!r}")


def _check_non_negative(owner: str, name: str, value: float | None) -> None:
    _check_finite(owner, name, value)
    if value is not None and value < 0:
        raise ValueError(f"{owner}.{name} must be >= 0, got {value!r}")


def _phase_amps(owner: str, name: str, value: Iterable[float] | None) -> PhaseAmps | None:
    if value is None:
        return None
    values = tuple(float(v) for v in value)
    if len(values) != 3:
        raise ValueError(f"{owner}.{name} needs 3 values (L1, L2, L3), got {len(values)}")
    for v in values:
        _check_finite(owner, name, v)
    return (values[0], values[1], values[2])


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True)
class SiteSettings:
    """Site-wide energy-management settings (defaults as in SPEC §3)."""

    floor_mode: FloorMode = FloorMode.IEC61851
    priority: Priority = Priority.ENERGY
    production_mode: ProductionMode = ProductionMode.GRID
    optimisation_enabled: bool = True
    reduction_trigger_a: float = 4.0
    reduction_gap_a: float = 2.0
    increase_gap_a: float = 1.0
    # Measurements taken before the EV had time to follow a new setpoint are ignored.
    optimisation_settle_s: float = 60.0
    idle_suspension_enabled: bool = False
    idle_threshold_a: float = 1.0
    # "For a while" in SPEC §3.3: how long below the threshold before suspending.
    idle_after_s: float = 300.0
    wake_up_interval_s: float = 600.0
    # How long a woken-up session is offered current before it is suspended again.
    wake_up_probe_s: float = 60.0
    nominal_voltage_v: float = 230.0
    deadband_a: float = 1.0
    rerank_interval_s: float = 900.0

    def __post_init__(self) -> None:
        for name in (
            "reduction_trigger_a",
            "reduction_gap_a",
            "increase_gap_a",
            "optimisation_settle_s",
            "idle_threshold_a",
            "idle_after_s",
            "wake_up_interval_s",
            "wake_up_probe_s",
            "deadband_a",
            "rerank_interval_s",
        ):
            _check_non_negative("SiteSettings", name, getattr(self, name))
        _check_finite("SiteSettings", "nominal_voltage_v", self.nominal_voltage_v)
        if self.nominal_voltage_v <= 0:
            raise ValueError("SiteSettings.nominal_voltage_v must be > 0")
        if self.wake_up_interval_s <= 0:
            raise ValueError("SiteSettings.wake_up_interval_s must be > 0")

    def floor_a(self, phase_count: int) -> float:
        """Minimum current (A per phase) for an EV charging on ``phase_count`` phases."""
        if self.floor_mode is FloorMode.EVZE:
            return 8.0 if phase_count == 1 else 14.0
        return 6.0


@dataclass(frozen=True, slots=True)
class Reduction:
    """An active limit on a zone's maximum: a percentage of it, or an absolute current.

    When any ``INPUT`` reduction is active, ``TOU`` reductions are ignored (SPEC §3.5);
    the lowest of the remaining ones applies. Expired reductions must not be passed.
    """

    source: ReductionSource
    percent: float | None = None
    current_a: float | None = None

    def __post_init__(self) -> None:
        if (self.percent is None) == (self.current_a is None):
            raise ValueError("Reduction needs exactly one of percent or current_a")
        _check_non_negative("Reduction", "percent", self.percent)
        _check_non_negative("Reduction", "current_a", self.current_a)


@dataclass(frozen=True, slots=True)
class Zone:
    """An electrical zone (switchboard) with its live readings.

    ``max_current_a`` applies to each of L1, L2, L3. A dynamic zone's
    ``meter_current_a`` is its meter's total current per phase (building loads plus
    the chargers below it); ``None`` means the meter is lost, and the zone then
    runs on ``degraded_current_a``. ``production_current_a`` is the local
    production per phase; ``None`` while ``has_production_meter`` means that meter
    is lost and no production is counted.

    ``meter_net_of_production``: the zone meter sits where the zone's own
    production flows through it (e.g. at the grid connection with the solar
    inverter behind it), so it reads building + chargers − production, and
    below 0 while the zone exports (a meter that gives only magnitudes reads
    an export as a load, which errs on the safe side). The production is then
    added back to tell the building load, never added a second time (see
    :func:`~apps.energy.allocator.capacity.zone_capacity`). Ignored on a
    static zone.

    ``previous_other_loads_a`` is what the previous allocation took the zone's
    other loads to be, and ``held_meter_current_a`` the meter level that
    estimate stands for (:attr:`ZoneAllocation.held_meter_current_a`): a fall
    of the meter below it, which EVs dipping under their last samples could
    explain, is not yet credited to the building (see
    :func:`~apps.energy.allocator.capacity.other_loads_da`). ``None``: no
    such hold, other loads are the meter minus the samples.

    """

    zone_id: int
    max_current_a: float
    parent_id: int | None = None
    dynamic: bool = False
    degraded_current_a: float = 0.0
    meter_current_a: PhaseAmps | None = None
    has_production_meter: bool = False
    production_current_a: PhaseAmps | None = None
    meter_net_of_production: bool = False
    reductions: tuple[Reduction, ...] = ()
    phase_imbalance_limit_a: float | None = None
    nominal_voltage_v: float | None = None
    previous_other_loads_a: PhaseAmps | None = None
    held_meter_current_a: PhaseAmps | None = None

    def __post_init__(self) -> None:
        owner = f"Zone {self.zone_id}"
        object.__setattr__(
            self,
            "previous_other_loads_a",
            _phase_amps(owner, "previous_other_loads_a", self.previous_other_loads_a),
        )
        object.__setattr__(
            self,
            "held_meter_current_a",
            _phase_amps(owner, "held_meter_current_a", self.held_meter_current_a),
        )
        _check_non_negative(owner, "max_current_a", self.max_current_a)
        _check_non_negative(owner, "degraded_current_a", self.degraded_current_a)
        _check_non_negative(owner, "phase_imbalance_limit_a", self.phase_imbalance_limit_a)
        _check_finite(owner, "nominal_voltage_v", self.nominal_voltage_v)
        if self.nominal_voltage_v is not None and self.nominal_voltage_v <= 0:
            raise ValueError(f"{owner}.nominal_voltage_v must be > 0")
        object.__setattr__(
            self, "meter_current_a", _phase_amps(owner, "meter_current_a", self.meter_current_a)
        )
        object.__setattr__(
            self,
            "production_current_a",
            _phase_amps(owner, "production_current_a", self.production_current_a),
        )
        object.__setattr__(self, "reductions", tuple(self.reductions))

    @property
    def meter_lost(self) -> bool:
        """True for a dynamic zone without a meter reading (runs degraded)."""
        return self.dynamic and self.meter_current_a is None


@dataclass(frozen=True, slots=True)
class Connector:
    """A charging connector: where it is, how it is wired, what it can take.

    ``key`` identifies the connector everywhere (e.g. ``"CP001/1"``). AC connectors
    give ``max_current_a`` (per phase); DC connectors give ``max_power_w``.
    """

    key: str
    zone_id: int
    wiring: PhaseWiring = PhaseWiring.TRI123
    current_type: CurrentType = CurrentType.AC
    max_current_a: float | None = None
    max_power_w: float | None = None
    station_id: int | str | None = None

    def __post_init__(self) -> None:
        owner = f"Connector {self.key}"
        _check_non_negative(owner, "max_current_a", self.max_current_a)
        _check_non_negative(owner, "max_power_w", self.max_power_w)
        if self.current_type is CurrentType.AC and self.max_current_a is None:
            raise ValueError(f"{owner}: an AC connector needs max_current_a")
        if self.current_type is CurrentType.DC and self.max_power_w is None:
            raise ValueError(f"{owner}: a DC connector needs max_power_w")


@dataclass(frozen=True, slots=True)
class Session:
    """A charging session on a connector, with what is known of the EV right now.

    - ``ev_phases``: phases the EV actually draws on (1–3, detected from measured
      current); ``None`` = unknown, assume every phase of the wiring. Its
      setpoint is budgeted on these phases only: give a lower count than the
      wiring's only on plain per-phase evidence.
    - ``measured_current_a``: the connector's measured current per **building**
      phase (see :func:`connector_to_building_phases`); ``None`` = no reading yet.
      For a DC connector, its AC input (power / (voltage × supply phases)),
      never its DC output current. It is subtracted from the zone meters, at
      most the setpoint in force, so it must never exceed what the session
      draws on a phase: when unsure, give less (or ``None``).
    - ``last_setpoint_a`` / ``last_setpoint_at_s`` / ``last_reason``: the setpoint
      last sent to the station, when, and the reason the allocator gave for it.
    - ``idle_since_s``: fed back from the previous :class:`SessionAllocation`.
    - ``drawing_cap_a``: the most the EV can have been drawing while the meters
      were read: the setpoint the station was on *then* (the previous one when
      the last was accepted only afterwards). ``None`` = ``last_setpoint_a``.
    - ``ramp_current_a``: per building phase, the raised setpoint the EV may be
      following though no sample shows it yet; ``None`` = no ramp. It is never
      subtracted from the meter: the EV may still be on its sampled value, so
      until a sample shows the ramp, the meter counts it as other load.
    - ``station_limit_a``: the lowest limit the station may hold the EV to now
      (``ConnectorProfiles.following_a``; ``None``: not known). Below the session's floor
      the EV is not charging yet: below a meter, starting it needs room for
      its ramp on top of its setpoint for a few seconds (see ``allocate``).
    """

    connector: Connector
    vip: bool = False
    energy_wh: float = 0.0
    charging_duration_s: float = 0.0
    ev_phases: int | None = None
    measured_current_a: PhaseAmps | None = None
    last_setpoint_a: float | None = None
    last_setpoint_at_s: float | None = None
    last_reason: Reason | None = None
    idle_since_s: float | None = None
    drawing_cap_a: float | None = None
    ramp_current_a: PhaseAmps | None = None
    station_limit_a: float | None = None

    def __post_init__(self) -> None:
        owner = f"Session {self.connector.key}"
        _check_non_negative(owner, "drawing_cap_a", self.drawing_cap_a)
        object.__setattr__(
            self, "ramp_current_a", _phase_amps(owner, "ramp_current_a", self.ramp_current_a)
        )
        _check_finite(owner, "energy_wh", self.energy_wh)
        _check_finite(owner, "charging_duration_s", self.charging_duration_s)
        _check_non_negative(owner, "last_setpoint_a", self.last_setpoint_a)
        _check_finite(owner, "last_setpoint_at_s", self.last_setpoint_at_s)
        _check_finite(owner, "idle_since_s", self.idle_since_s)
        if self.ev_phases is not None and self.ev_phases not in (1, 2, 3):
            raise ValueError(f"{owner}.ev_phases must be 1, 2, 3 or None")
        object.__setattr__(
            self,
            "measured_current_a",
            _phase_amps(owner, "measured_current_a", self.measured_current_a),
        )

    @property
    def key(self) -> str:
        """The connector key, which identifies the session."""
        return self.connector.key


@dataclass(frozen=True, slots=True)
class Reserve:
    """Current held for a disconnected station in a zone (and so in all its ancestors).

    A connector is reserved at what it may draw when evce cannot lower it
    now: a disconnected station, a station that refused or did not answer a
    decrease, a station whose profiles are unknown (see ``envelope``).
    ``measured_current_a`` is what it was last measured drawing, per building
    phase: that part of a zone meter's reading is its own, not building load
    (counted at most at ``current_a``); ``None`` = not known, and the whole
    reading then counts as building load on top of the reserve (the safe side).
    """

    zone_id: int
    current_a: PhaseAmps
    key: str = ""
    measured_current_a: PhaseAmps | None = None

    def __post_init__(self) -> None:
        owner = f"Reserve {self.key or self.zone_id}"
        amps = _phase_amps(owner, "current_a", self.current_a)
        assert amps is not None
        for value in amps:
            _check_non_negative(owner, "current_a", value)
        object.__setattr__(self, "current_a", amps)
        object.__setattr__(
            self,
            "measured_current_a",
            _phase_amps(owner, "measured_current_a", self.measured_current_a),
        )


@dataclass(frozen=True, slots=True)
class Ranking:
    """Session priority order (highest first) and when it was computed.

    Feed :attr:`Allocation.ranking` back into the next :class:`SiteSnapshot`: the
    order is kept until ``rerank_interval_s`` has passed or a session arrives or
    leaves or the capacity changes, so cars do not flap between charging and
    suspended. ``capacity_signature`` is how a capacity change is detected.
    """

    keys: tuple[str, ...]
    ranked_at_s: float
    capacity_signature: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", tuple(self.keys))
        _check_finite("Ranking", "ranked_at_s", self.ranked_at_s)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form, for storing between ticks."""
        return {
            "keys": list(self.keys),
            "ranked_at_s": self.ranked_at_s,
            "capacity_signature": self.capacity_signature,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Ranking:
        """Rebuild a ranking stored with :meth:`as_dict`."""
        return cls(
            keys=tuple(str(k) for k in data["keys"]),
            ranked_at_s=float(data["ranked_at_s"]),
            capacity_signature=str(data.get("capacity_signature", "")),
        )


@dataclass(frozen=True, slots=True)
class SiteSnapshot:
    """Everything one allocation needs, at one instant ``now_s`` (epoch seconds).

    ``capacity_changed`` forces a re-rank (configuration or reduction change);
    changes of zone limits and meter losses are also detected by themselves.
    """

    now_s: float
    zones: tuple[Zone, ...]
    sessions: tuple[Session, ...] = ()
    reserves: tuple[Reserve, ...] = ()
    settings: SiteSettings = field(default_factory=SiteSettings)
    previous_ranking: Ranking | None = None
    capacity_changed: bool = False

    def __post_init__(self) -> None:
        _check_finite("SiteSnapshot", "now_s", self.now_s)
        object.__setattr__(self, "zones", tuple(self.zones))
        object.__setattr__(self, "sessions", tuple(self.sessions))
        object.__setattr__(self, "reserves", tuple(self.reserves))


# --------------------------------------------------------------------------- outputs


class SessionAllocation(NamedTuple):
    """The decision for one connector.

    ``setpoint_a`` is per phase, a multiple of 0.1 A, 0 or at least ``floor_a``;
    DC connectors also get ``setpoint_w``. ``changed`` says whether it differs from
    the last sent setpoint (i.e. must be sent). ``deadband_held`` means the last
    sent value was kept because the new one differed by less than the deadband.
    ``idle_since_s`` must be fed back in the next :class:`Session`.

    A named tuple rather than a frozen dataclass: a thousand of them are made
    per allocation, three times faster.
    """

    key: str
    setpoint_a: float
    setpoint_w: float | None
    reason: Reason
    limiting_zone_id: int | None
    limiting_phase: Phase | None
    phases: tuple[Phase, ...]
    floor_a: float
    max_a: float
    vip: bool
    rank: int
    changed: bool
    deadband_held: bool
    idle_since_s: float | None

    @property
    def charging(self) -> bool:
        """True when the connector is allowed to charge (setpoint above 0)."""
        return self.setpoint_a > 0


@dataclass(frozen=True, slots=True)
class ZoneAllocation:
    """Live figures of one zone (SPEC §3.7), all per phase (L1, L2, L3) in amps.

    - ``limit_a``: maximum current with the active reduction (same on each phase).
    - ``other_loads_a``: building loads from the meter (``None``: static or lost);
      for a meter net of production, building loads minus production, below 0
      while the zone exports (that is what the meter level stands for).
    - ``held_meter_current_a``: the meter level ``other_loads_a`` stands for: the
      meter, or above it while a fall of the meter is not yet credited to the
      building; feed it back as :attr:`Zone.held_meter_current_a`.
    - ``production_a``: local production counted in ``available_a``.
    - ``grid_available_a``: the part of ``available_a`` that comes from the grid.
    - ``available_a``: current available for charging in this zone (SPEC §3.2).
    - ``reserved_a``: held for disconnected stations below the zone.
    - ``allocated_a``: sum of the setpoints of the sessions below it.
    - ``headroom_a``: ``available − reserved − allocated`` (never negative).
    - ``ramping_a``: raised setpoints below the zone that EVs may already
      draw though no sample shows it, as far as the zone's meter counts them
      as other loads (0 on a zone without a usable meter): what the next
      reading may take from ``available_a`` though the building did not
      rise. Raises keep it free (see ``transition.admit_raises``).
    - ``kept_for_ramps_a``: ``ramping_a`` plus the raises this allocation
      gives sessions below a meter: the room ramps take twice for a few
      seconds, which idle connectors' fallbacks leave free
      (``transition.plan_changes``).
    """

    zone_id: int
    limit_a: float
    reduction_percent: float | None
    meter_lost: bool
    production_lost: bool
    other_loads_a: PhaseAmps | None
    production_a: PhaseAmps
    grid_available_a: PhaseAmps
    available_a: PhaseAmps
    reserved_a: PhaseAmps
    allocated_a: PhaseAmps
    headroom_a: PhaseAmps
    session_count: int
    charging_count: int
    held_meter_current_a: PhaseAmps | None = None
    ramping_a: PhaseAmps = (0.0, 0.0, 0.0)
    kept_for_ramps_a: PhaseAmps = (0.0, 0.0, 0.0)


@dataclass(frozen=True, slots=True)
class Allocation:
    """The result of :func:`allocate`: one entry per session and per zone, sorted by key/id."""

    now_s: float
    sessions: tuple[SessionAllocation, ...]
    zones: tuple[ZoneAllocation, ...]
    ranking: Ranking
    reranked: bool
    _by_key: dict[str, SessionAllocation] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_key", {item.key: item for item in self.sessions})

    def session(self, key: str) -> SessionAllocation:
        """The allocation of the session on connector ``key`` (``KeyError`` if absent)."""
        return self._by_key[key]

    def zone(self, zone_id: int) -> ZoneAllocation:
        """The figures of zone ``zone_id`` (``KeyError`` if absent)."""
        for item in self.zones:
            if item.zone_id == zone_id:
                return item
        raise KeyError(zone_id)


# --------------------------------------------------------------------------- helpers


def connector_to_building_phases(
    wiring: PhaseWiring, connector_current_a: Iterable[float]
) -> PhaseAmps:
    """Map currents measured on the connector's phases 1..3 to building phases L1..L3.

    A TRI231 connector's phase 1 is the building's L2, so ``(16, 0, 0)`` measured on
    it becomes ``(0, 16, 0)``. Extra values of a single-phase connector are ignored.
    """
    values = list(connector_current_a)
    building = [0.0, 0.0, 0.0]
    for connector_phase, building_phase in enumerate(wiring.building_phases):
        if connector_phase < len(values):
            building[building_phase] = float(values[connector_phase])
    return (building[0], building[1], building[2])


def detect_ev_phases(
    wiring: PhaseWiring, connector_current_a: Iterable[float], threshold_a: float = 1.0
) -> int | None:
    """Phases an EV draws on, from current per connector phase (``None`` if it draws none).

    Only the wiring's phases count; a phase carries load from ``threshold_a``.
    """
    values = list(connector_current_a)[: len(wiring.building_phases)]
    drawing = sum(1 for value in values if value >= threshold_a)
    return drawing or None


def loaded_phases(
    wiring: PhaseWiring, ev_phases: int | None, current_type: CurrentType
) -> tuple[int, ...]:
    """Building phase indexes (sorted, 0 = L1) a session loads.

    A DC charger draws on every phase of its wiring. An AC EV draws on the first
    ``ev_phases`` phases of the wiring (the first listed for a single-phase EV); an
    unknown count is taken as all of them, which is the safe assumption.
    """
    order = wiring.building_phases
    if current_type is CurrentType.AC and ev_phases is not None:
        order = order[: max(1, min(ev_phases, len(order)))]
    return tuple(sorted(order))


def reserve_for_connector(
    connector: Connector,
    *,
    current_a: float | None = None,
    power_w: float | None = None,
    nominal_voltage_v: float = 230.0,
    measured_current_a: PhaseAmps | None = None,
) -> Reserve:
    """The reserve of a disconnected connector on every phase of its wiring.

    Give ``current_a`` (an AC connector's offline current) or ``power_w`` (a DC
    connector's last setpoint, converted with ``nominal_voltage_v``, cos φ = 1).
    The EV's phase count is not trusted here: a reconnected EV may use them all.
    """
    phases = connector.wiring.building_phases
    if (current_a is None) == (power_w is None):
        raise ValueError("reserve_for_connector needs exactly one of current_a or power_w")
    if current_a is not None:
        per_phase_a = current_a
    else:
        assert power_w is not None
        per_phase_a = power_w / (nominal_voltage_v * len(phases))
    per_phase_a = max(0.0, per_phase_a)
    values = [0.0, 0.0, 0.0]
    for phase in phases:
        values[phase] = per_phase_a
    return Reserve(
        zone_id=connector.zone_id,
        current_a=(values[0], values[1], values[2]),
        key=connector.key,
        measured_current_a=measured_current_a,
    )
