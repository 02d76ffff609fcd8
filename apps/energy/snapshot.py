"""The one adapter between the database / hot state and the pure allocator.

It turns zone rows, meter hot state, active reductions, ongoing transactions
with their latest measurements, disconnected stations and what was last sent
into an allocator ``SiteSnapshot``. Missing or stale data fails closed: a meter
counts with its last good values until it is lost (SPEC §4) and not once they
are older than its loss horizon (:meth:`apps.meters.selectors.MeterState.is_usable`);
a lost meter is never read as 0 A.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

from django.conf import settings as django_settings
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from apps.energy import state
from apps.energy.allocator import (
    Connector as AllocConnector,
)
from apps.energy.allocator import (
    CurrentType,
    FloorMode,
    OfflineCurrent,
    PhaseWiring,
    Priority,
    ProductionMode,
    Reason,
    Reduction,
    ReductionSource,
    Reserve,
    Session,
    SiteSettings,
    SiteSnapshot,
    Zone,
    connector_to_building_phases,
    offline_currents,
    readings,
    reserve_for_connector,
)
from apps.energy.allocator.envelope import ConnectorProfiles
from apps.energy.allocator.readings import sample_cap
from apps.energy.allocator.tree import ZoneTree
from apps.energy.measurement import ev_measurement, previous_current_samples
from apps.meters.selectors import MeterState, PhaseCurrents, meter_states
from apps.siteconfig.models import SiteSettings as SiteSettingsRow
from apps.stations.models import Connector, MeterSample, Station, StationState, Transaction
from apps.stations.selectors import online_identities
from apps.zones.models import Zone as ZoneRow
from apps.zones.selectors import ActiveReduction, active_reductions

# After EV_RAMP_S the station is asked for a sample; this long is left for it to come.
RAMP_CONFIRM_S = 2.0
# A station's sample reaches evce this long after it was taken, at most.
SAMPLE_TRANSIT_S = 2.0


@dataclass(frozen=True)
class ConnectorRef:
    """What the control loop needs to reach a connector and label its session."""

    key: str
    station_id: int
    identity: str
    connector_id: int
    current_type: str
    transaction_id: int | None = None


@dataclass
class SnapshotContext:
    """The snapshot plus the references to deliver its results."""

    snapshot: SiteSnapshot
    refs: dict[str, ConnectorRef] = field(default_factory=dict)
    offline_a: dict[str, float] = field(default_factory=dict)
    offline_w: dict[str, float | None] = field(default_factory=dict)
    installed_connectors: dict[str, ConnectorRef] = field(default_factory=dict)
    connected_station_ids: set[int] = field(default_factory=set)
    # What each connector's station may hold, and the connectors outside the allocation:
    profiles: dict[str, ConnectorProfiles] = field(default_factory=dict)
    connectors: dict[str, AllocConnector] = field(default_factory=dict)
    profiles_read_at_s: float = 0.0
    # Dip holds: the newest sample when this snapshot was taken, each zone's
    # chain (itself and its ancestors), how long a hold may last, holds begun.
    zone_chains: dict[int, tuple[int, ...]] = field(default_factory=dict)
    dip_hold_s: float = 0.0
    holds_begun: list[tuple[int, float]] = field(default_factory=list)  # (zone, since_s)
    holds_ended: set[int] = field(default_factory=set)  # zones whose dip hold ended now
    transaction_ids: dict[str, int] = field(default_factory=dict)  # the active one
    held: dict[str, ConnectorRef] = field(default_factory=dict)  # reserved at their envelope
    # Held connectors with a session, as sessions: what they would get if they followed.
    held_sessions: dict[str, Session] = field(default_factory=dict)
    idle: dict[str, ConnectorRef] = field(default_factory=dict)  # connected, no session
    reductions: dict[int, list[ActiveReduction]] = field(default_factory=dict)
    zone_names: dict[int, str] = field(default_factory=dict)
    previous_zones: dict[int, dict] = field(default_factory=dict)  # the last run's figures
    meter_readings: dict[int, PhaseCurrents | None] = field(default_factory=dict)  # used, by meter


def connector_key(identity: str, connector_id: int) -> str:
    return f"{identity}/{connector_id}"


def allocator_settings(row: SiteSettingsRow) -> SiteSettings:
    return SiteSettings(
        floor_mode=FloorMode(row.floor_mode),
        priority=Priority(row.priority),
        production_mode=ProductionMode(row.production_mode),
        optimisation_enabled=row.optimisation_enabled,
        reduction_trigger_a=float(row.reduction_trigger_a),
        reduction_gap_a=float(row.reduction_gap_a),
        increase_gap_a=float(row.increase_gap_a),
        idle_suspension_enabled=row.idle_suspension_enabled,
        idle_after_s=float(row.idle_after_s),
        wake_up_interval_s=float(row.idle_wake_up_interval_s),
        nominal_voltage_v=float(row.nominal_voltage_v),
    )


def _phase_currents(hot: MeterState, now: datetime) -> tuple[float, float, float] | None:
    """Per-phase current of a meter, or None when lost, never read or too old."""
    return hot.usable_currents_a(now)


def _other_loads_hold(
    figures: dict | None, now_s: float, hold_s: float
) -> tuple[PhaseCurrents | None, PhaseCurrents | None]:
    """The last estimate of a zone's other loads and the meter level it stands for.

    The level is the one held back while a fall of the meter is younger than
    ``hold_s``: by then every station has sent a sample taken after the fall,
    which shows any EV dip, so that fall belongs to the building. Once a hold
    ends (here, or by the samples, see :func:`_end_dip_holds_shown_by_samples`)
    the estimate stands for the last meter reading instead (:func:`_rebased`):
    a fall since then is a new one, which EVs dipping now could explain.
    """
    figures = figures or {}
    other, held = figures.get("other_loads_a"), figures.get("held_meter_current_a")
    if not other or not held or len(other) != 3 or len(held) != 3:
        return None, None
    since_s = figures.get("held_since_s")
    if since_s is not None and now_s - float(since_s) > hold_s:
        return _rebased(figures)
    return (
        (float(other[0]), float(other[1]), float(other[2])),
        (float(held[0]), float(held[1]), float(held[2])),
    )


def _rebased(figures: dict) -> tuple[PhaseCurrents | None, PhaseCurrents | None]:
    """The last estimate, standing for the last meter reading: a held fall is credited."""
    other, meter = figures.get("other_loads_a"), figures.get("meter_current_a")
    if not other or not meter or len(other) != 3 or len(meter) != 3:
        return None, None
    return (
        (float(other[0]), float(other[1]), float(other[2])),
        (float(meter[0]), float(meter[1]), float(meter[2])),
    )


def _reductions(items: Iterable[ActiveReduction]) -> tuple[Reduction, ...]:
    return tuple(
        Reduction(
            source=ReductionSource(item.source), percent=item.percent, current_a=item.current_a
        )
        for item in items
    )


def _read_window(hot: dict[int, MeterState], now: datetime) -> tuple[float, float] | None:
    """From the start of the oldest to the end of the newest meter reading in use."""
    starts, ends = [], []
    for state_ in hot.values():
        if _phase_currents(state_, now) is None or state_.read_at is None:
            continue
        starts.append(state_.read_at.timestamp())
        ends.append((state_.read_done_at or state_.read_at).timestamp())
    return (min(starts), max(ends)) if starts else None


def build_zones(
    now: datetime,
    site: SiteSettingsRow,
    reductions: dict[int, list[ActiveReduction]],
    *,
    read_window: list[tuple[float, float]] | None = None,
    previous: dict[int, dict] | None = None,
    meter_readings: dict[int, PhaseCurrents | None] | None = None,
) -> tuple[Zone, ...]:
    """The allocator's zones; ``read_window`` receives when their meters were read.

    ``previous`` holds the figures of the last allocation (read here if not given);
    ``meter_readings`` receives the reading used of each zone meter (None: unusable).
    """
    rows = list(ZoneRow.objects.all())
    meter_ids = [i for row in rows for i in (row.meter_id, row.production_meter_id) if i]
    hot = meter_states(meter_ids)
    if read_window is not None:
        window = _read_window(hot, now)
        if window is not None:
            read_window.append(window)
    if previous is None:
        previous = state.zone_results()
    readings = {meter_id: _phase_currents(hot[meter_id], now) for meter_id in meter_ids}
    if meter_readings is not None:
        meter_readings.update(readings)
    hold_s = float(site.meter_value_sample_interval_s) + SAMPLE_TRANSIT_S
    zones = []
    for row in rows:
        previous_other, held_meter = _other_loads_hold(
            previous.get(row.pk), now.timestamp(), hold_s
        )
        zones.append(
            Zone(
                zone_id=row.pk,
                parent_id=row.parent_id,
                max_current_a=float(row.max_current_a),
                dynamic=row.meter_id is not None,
                degraded_current_a=float(row.degraded_current_a),
                meter_current_a=readings[row.meter_id] if row.meter_id else None,
                has_production_meter=row.production_meter_id is not None,
                production_current_a=(
                    readings[row.production_meter_id] if row.production_meter_id else None
                ),
                meter_net_of_production=row.meter_net_of_production,
                reductions=_reductions(reductions.get(row.pk, ())),
                phase_imbalance_limit_a=(
                    float(row.phase_imbalance_limit_a)
                    if row.phase_imbalance_limit_a is not None
                    else None
                ),
                previous_other_loads_a=previous_other,
                held_meter_current_a=held_meter,
            )
        )
    return tuple(zones)


def _alloc_connector(station: Station, connector: Connector) -> AllocConnector:
    return AllocConnector(
        key=connector_key(station.identity, connector.connector_id),
        zone_id=station.zone_id,
        wiring=PhaseWiring(connector.phase_wiring),
        current_type=CurrentType(connector.current_type),
        max_current_a=float(connector.max_current_a)
        if connector.max_current_a is not None
        else None,
        max_power_w=float(connector.max_power_w) if connector.max_power_w is not None else None,
        station_id=station.pk,
    )


def station_offline_currents(
    station: Station, now: datetime | None = None
) -> dict[int, OfflineCurrent]:
    """Offline current of each connector of ``station``, by connector id.

    It depends on every installed connector of the zones above the station, so
    the whole tree is read; a station outside any zone gets nothing.
    """
    if station.zone_id is None or station.state != StationState.INSTALLED:
        return {}
    now = now or timezone.now()
    site = SiteSettingsRow.load()
    zones = build_zones(now, site, active_reductions(now))
    connectors = [_alloc_connector(s, c) for s in _installed_stations() for c in s.connectors.all()]
    prefix = f"{station.identity}/"
    return {
        int(item.key.removeprefix(prefix)): item
        for item in offline_currents(zones, connectors, allocator_settings(site))
        if item.key.startswith(prefix)
    }


def _installed_stations() -> list[Station]:
    """Installed stations in a zone, with their connectors: what the allocator drives."""
    return list(
        Station.objects.filter(state=StationState.INSTALLED, zone__isnull=False).prefetch_related(
            "connectors"
        )
    )


def ramping_to_a(
    last: dict, sample: MeterSample | None, now_s: float, *, first_before_a: float
) -> float | None:
    """The raised setpoint an EV may be ramping up to though no sample shows it.

    See :func:`apps.energy.allocator.readings.ramping_to_a`. The allocator
    never subtracts such a ramp from the meter, since the EV may as well still
    be on its sample: the ramp counts as other load until a sample shows it,
    and raises keep room for it (``ZoneAllocation.ramping_a``,
    ``transition.admit_raises``).
    """
    return readings.ramping_to_a(
        last.get("history") or [],
        None if sample is None else sample.sampled_at.timestamp(),
        now_s,
        first_before_a=first_before_a,
        ramp_s=float(django_settings.EV_RAMP_S),
        confirm_s=RAMP_CONFIRM_S,
    )


def _ramp_phases(
    wiring: PhaseWiring, ev_phases: int | None, ramp_a: float
) -> tuple[float, float, float]:
    """``ramp_a`` on the building phases the EV draws on (all of the wiring's if unknown)."""
    count = ev_phases or len(wiring.building_phases)
    return connector_to_building_phases(wiring, [ramp_a] * count)


def connector_profiles_of(raw: ConnectorProfiles | dict | None, max_a: float) -> ConnectorProfiles:
    """A connector's profiles; unknown ones (just connected, never confirmed) at ``max_a``."""
    if isinstance(raw, ConnectorProfiles):
        return raw
    raw = raw or {}
    return ConnectorProfiles.unknown(
        max_a,
        fallback_attempt_a=raw.get("fallback_attempt_a"),
        live_attempt_a=raw.get("live_attempt_a"),
    )


def connector_max_a(connector: AllocConnector, voltage_v: float) -> float:
    """The most a connector can draw per phase: its rating, from power for DC."""
    if connector.current_type is CurrentType.DC:
        assert connector.max_power_w is not None
        return connector.max_power_w / (voltage_v * len(connector.wiring.building_phases))
    assert connector.max_current_a is not None
    return connector.max_current_a


def _end_dip_holds_shown_by_samples(
    zones: tuple[Zone, ...],
    previous: dict[int, dict],
    context: SnapshotContext,
    sample_ids: dict[str, int],
    now_s: float,
) -> tuple[Zone, ...]:
    """A dip hold ends once every session below its zone has a sample taken after it began.

    Such a sample shows any EV dip, so the fall of the meter that is left
    belongs to the building (see ``allocator.capacity.other_loads_da``). Which
    samples those are is marked once the stations answered the request for
    one (``delivery.ask_for_samples_after_dip``); until then the hold stands.
    """
    marks = state.hold_marks()
    result = []
    for zone in zones:
        figures = previous.get(zone.zone_id) or {}
        mark = marks.get(zone.zone_id) or {}
        after_id = mark.get("after_sample_id")
        since_s = figures.get("held_since_s")
        if since_s is not None and now_s - float(since_s) > context.dip_hold_s:
            context.holds_ended.add(zone.zone_id)  # expired: rebased in build_zones
        marked = since_s is not None and mark.get("since_s") == since_s
        if zone.held_meter_current_a is not None and marked and after_id is not None:
            below = [
                key
                for key in context.refs
                if zone.zone_id in context.zone_chains.get(context.connectors[key].zone_id, ())
            ]
            stations = mark.get("stations") or {}
            if all(
                sample_ids.get(key, 0) > stations.get(context.refs[key].identity, after_id)
                for key in below
            ):
                previous_other, held_meter = _rebased(figures)
                zone = replace(
                    zone, previous_other_loads_a=previous_other, held_meter_current_a=held_meter
                )
                context.holds_ended.add(zone.zone_id)
        result.append(zone)
    return tuple(result)


def _session(
    connector: AllocConnector, station: Station, tx: Transaction, last: dict, **readings
) -> Session:
    """A session as the allocator sees it; ``last`` is what was last sent for it."""
    same_tx = last.get("transaction_id") == tx.pk
    return Session(
        connector=connector,
        vip=station.vip or tx.vip,
        energy_wh=float(tx.energy_wh),
        charging_duration_s=float(tx.charging_duration_s),
        last_setpoint_a=last.get("setpoint_a") if same_tx else None,
        last_setpoint_at_s=last.get("at_s") if same_tx else None,
        last_reason=Reason(last["reason"]) if same_tx and last.get("reason") else None,
        idle_since_s=last.get("idle_since_s") if same_tx else None,
        **readings,
    )


def build_snapshot(
    *, now: datetime | None = None, capacity_changed: bool = False
) -> SnapshotContext:
    """Everything the allocator needs at ``now``, from the database and Redis.

    Every installed connector is budgeted at what it may really draw (its
    envelope, see ``allocator.envelope``). Sessions whose station follows evce
    are allocated; a connector that cannot be counted on to come down (a
    disconnected station, a refused or unanswered decrease, profiles unknown
    since the station connected) is reserved at its envelope instead, and its
    session, if any, is asked again for what evce last wanted of it.
    """
    now = now or timezone.now()
    now_s = now.timestamp()
    site = SiteSettingsRow.load()
    settings = allocator_settings(site)
    reductions = active_reductions(now)
    read_window: list[tuple[float, float]] = []
    previous_zones = state.zone_results()
    meter_readings: dict[int, PhaseCurrents | None] = {}
    zones = build_zones(
        now,
        site,
        reductions,
        read_window=read_window,
        previous=previous_zones,
        meter_readings=meter_readings,
    )

    stations = _installed_stations()
    connected = online_identities([s.identity for s in stations])
    connectors: list[AllocConnector] = []
    by_key: dict[str, tuple[Station, Connector]] = {}
    for station in stations:
        for connector in station.connectors.all():
            alloc = _alloc_connector(station, connector)
            connectors.append(alloc)
            by_key[alloc.key] = (station, connector)
    offline = {item.key: item for item in offline_currents(zones, connectors, settings)}
    alloc_by_key = {c.key: c for c in connectors}

    latest_sample = MeterSample.objects.filter(transaction=OuterRef("pk")).order_by(
        "-sampled_at", "-pk"
    )
    ongoing = list(
        Transaction.objects.filter(stopped_at__isnull=True, station__in=stations)
        .annotate(sample_id=Subquery(latest_sample.values("pk")[:1]))
        .select_related("station")
    )
    samples = MeterSample.objects.in_bulk([t.sample_id for t in ongoing if t.sample_id])
    previous_samples = previous_current_samples(
        {t.pk: samples[t.sample_id] for t in ongoing if t.sample_id in samples}
    )
    sent = state.last_sent_setpoints()
    profiles_read_at_s = time.time()  # a station connecting after this is unknown again
    stored_profiles = state.connector_profiles()
    voltage_v = settings.nominal_voltage_v

    context = SnapshotContext(snapshot=None)  # type: ignore[arg-type]
    context.connectors = alloc_by_key
    context.profiles_read_at_s = profiles_read_at_s
    for key, alloc in alloc_by_key.items():
        context.profiles[key] = connector_profiles_of(
            stored_profiles.get(key), connector_max_a(alloc, voltage_v)
        )
    # The newest open transaction of a connector is the one its station runs.
    # A connector that reports Available has no session, whatever is left open.
    active: dict[str, Transaction] = {}
    for tx in sorted(ongoing, key=lambda t: t.pk):
        key = connector_key(tx.station.identity, tx.connector_id)
        if key in alloc_by_key and by_key[key][1].status != "Available":
            active[key] = tx

    sessions: list[Session] = []
    reserves: list[Reserve] = []
    sample_ids: dict[str, int] = {}  # the latest sample of each session, by connector
    for key, alloc in alloc_by_key.items():
        station, connector = by_key[key]
        ref = ConnectorRef(
            key, station.pk, station.identity, connector.connector_id, connector.current_type
        )
        context.installed_connectors[key] = ref
        context.offline_a[key] = offline[key].current_a
        context.offline_w[key] = offline[key].power_w
        profiles = context.profiles[key]
        tx = active.get(key)
        transaction_id = tx.pk if tx is not None else None
        envelope_a = profiles.envelope_a(now_s, transaction_id)
        measured = ev_phases = sample = None
        if tx is not None:
            context.transaction_ids[key] = tx.pk
            sample = samples.get(tx.sample_id) if tx.sample_id else None
            measurement = ev_measurement(
                alloc, sample, previous_samples.get(tx.pk), voltage_v=settings.nominal_voltage_v
            )
            measured, ev_phases = measurement.measured_current_a, measurement.ev_phases
        if station.identity not in connected:
            if envelope_a > 0:
                reserves.append(reserve_for_connector(alloc, current_a=envelope_a))
            continue
        if profiles.held(transaction_id, now_s):
            # Its station does not (or may not) follow evce: count what it may draw,
            # and its sample at most the lowest limit it may have been on when the
            # meters were read (a sample can predate a decrease the station applied).
            if measured is not None and read_window:
                lowest_a = profiles.lowest_a(read_window[0][0], transaction_id)
                measured = (
                    min(measured[0], lowest_a),
                    min(measured[1], lowest_a),
                    min(measured[2], lowest_a),
                )
            reserves.append(
                reserve_for_connector(alloc, current_a=envelope_a, measured_current_a=measured)
            )
            context.held[key] = ref if tx is None else replace(ref, transaction_id=tx.pk)
            if tx is not None:
                # What it would get if it followed: what to ask of it again.
                context.held_sessions[key] = _session(
                    alloc,
                    station,
                    tx,
                    sent.get(key) or {},
                    ev_phases=ev_phases,
                    measured_current_a=measured,
                    drawing_cap_a=profiles.lowest_a(now_s, transaction_id),
                )
            continue
        if tx is None:
            context.idle[key] = ref
            continue

        last = sent.get(key) or {}
        same_tx = last.get("transaction_id") == tx.pk
        drawing_cap_a = ramp_current_a = None
        connector = alloc
        if same_tx and read_window:
            cap = sample_cap(
                last.get("history") or [],
                *read_window[0],
                first_before_a=offline[key].current_a,
                history_complete=bool(last.get("history_complete", True)),
                # A DC session's setpoints are AC equivalents: no lift for it.
                envelope_a=envelope_a if alloc.current_type is CurrentType.AC else 0.0,
                response_s=float(django_settings.EV_RESPONSE_S),
                ramp_s=float(django_settings.EV_RAMP_S),
            )
            if cap is not None:
                drawing_cap_a = cap.cap_a
                if cap.raise_limit_a is not None and alloc.max_current_a is not None:
                    connector = replace(
                        alloc, max_current_a=min(alloc.max_current_a, cap.raise_limit_a)
                    )
            ramp_a = ramping_to_a(last, sample, now_s, first_before_a=offline[key].current_a)
            if ramp_a is not None:
                ramp_current_a = _ramp_phases(alloc.wiring, ev_phases, ramp_a)
        sessions.append(
            _session(
                connector,
                station,
                tx,
                last,
                ev_phases=ev_phases,
                measured_current_a=measured,
                drawing_cap_a=drawing_cap_a,
                ramp_current_a=ramp_current_a,
                station_limit_a=profiles.following_a(now_s, transaction_id),
            )
        )
        context.refs[key] = replace(ref, transaction_id=tx.pk)
        sample_ids[key] = tx.sample_id or 0

    context.dip_hold_s = float(site.meter_value_sample_interval_s) + SAMPLE_TRANSIT_S
    tree = ZoneTree(zones)
    context.zone_chains = {
        zone.zone_id: tuple(tree.zones[p].zone_id for p in tree.chains[position])
        for position, zone in enumerate(tree.zones)
    }
    zones = _end_dip_holds_shown_by_samples(zones, previous_zones, context, sample_ids, now_s)
    context.snapshot = SiteSnapshot(
        now_s=now_s,
        zones=zones,
        sessions=tuple(sessions),
        reserves=tuple(reserves),
        settings=settings,
        previous_ranking=state.ranking(),
        capacity_changed=capacity_changed,
    )
    context.connected_station_ids = {s.pk for s in stations if s.identity in connected}
    context.reductions = reductions
    context.zone_names = dict(ZoneRow.objects.values_list("pk", "name"))
    context.previous_zones = previous_zones
    context.meter_readings = meter_readings
    return context
