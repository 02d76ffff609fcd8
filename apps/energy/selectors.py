"""Typed reads of the control loop's results: live setpoints with their reasons, zone figures.

What the admin, the UI and the API show. Everything comes from the hot state
the control loop writes (:mod:`apps.energy.state` alone knows its keys): the
last allocation of each session and zone, the live setpoint each station
accepted, and what each connector's profiles let it draw.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db.models import Count, OuterRef, Subquery
from django.utils import timezone
from ocpp.v16.enums import ChargingProfileStatus

from apps.energy import state
from apps.energy.allocator import Phase, PhaseAmps, Reason, ZoneAllocation
from apps.energy.allocator.envelope import ConnectorProfiles
from apps.meters.selectors import meter_states
from apps.siteconfig.models import SiteSettings
from apps.stations import presence
from apps.stations.models import Connector, MeterSample, Station, StationState, Transaction
from apps.stations.selectors import StationPresence, station_counts
from apps.zones.models import EbmsReduction, Zone


def _at(epoch_s: float | None) -> datetime | None:
    return None if epoch_s is None else datetime.fromtimestamp(float(epoch_s), tz=UTC)


def _phase_amps(values: Any) -> PhaseAmps | None:
    if not values or len(values) != 3:
        return None
    return (float(values[0]), float(values[1]), float(values[2]))


def _zero_if_none(values: Any) -> PhaseAmps:
    return _phase_amps(values) or (0.0, 0.0, 0.0)


@dataclass(frozen=True, slots=True)
class ConnectorSetpoint:
    """The current setpoint of a connector with an ongoing session, and why.

    ``setpoint_a`` is what the last allocation gave the session (per phase);
    for a ``HELD`` connector (its station did not apply evce's last profile)
    it is what the station may still draw, and ``wanted_a`` what evce asks of
    it; for a session whose new setpoint waits (a raise for released capacity
    or for room for its ramp, a decrease while EVs ramp up) it is what the
    station holds, and ``wanted_a`` what the allocation gave it.
    ``limiting_zone_id`` / ``limiting_phase`` name the zone phase that
    stopped it from getting more, when a zone did. ``delivery`` is the
    station's answer to the profile that run sent (None: nothing was sent).
    ``accepted_a`` / ``accepted_at`` / ``valid_until`` describe the live
    profile the station last accepted for this transaction (``accepted_at``:
    when it first accepted that value; renewals keep it). ``envelope_a`` is
    the most the connector may draw now according to its profiles (None:
    unknown since the station connected).
    """

    key: str
    station_identity: str
    connector_id: int
    station_id: int | None
    transaction_id: int | None
    setpoint_a: float
    setpoint_w: float | None
    reason: Reason | str
    limiting_zone_id: int | None
    limiting_phase: Phase | None
    phases: tuple[int, ...]
    rank: int | None
    vip: bool
    delivery: str | None
    wanted_a: float | None
    allocated_at: datetime | None
    accepted_a: float | None
    accepted_at: datetime | None
    valid_until: datetime | None
    envelope_a: float | None

    @property
    def held(self) -> bool:
        return self.reason == Reason.HELD

    @property
    def applied(self) -> bool:
        """False when the station refused or did not answer the profile of the last run."""
        return self.delivery in (None, ChargingProfileStatus.accepted)


@dataclass(frozen=True, slots=True)
class ZoneReductionFigure:
    """A reduction that was active on the zone when its figures were computed."""

    source: str  # "tou" | "input" | "ebms"
    percent: float | None
    current_a: float | None
    description: str
    valid_until: datetime | None


@dataclass(frozen=True, slots=True)
class ZoneFigures:
    """A zone's live figures from the last allocation (SPEC §3.7).

    ``allocation`` holds the figures per phase (L1, L2, L3) in amps, as the
    allocator defines them (:class:`~apps.energy.allocator.ZoneAllocation`):
    the limit with the active reduction, the other loads the zone meter
    measured (None: a static zone, or its meter is lost), what is available,
    reserved and allocated. ``reductions`` are those that were active,
    ``held_since`` is set while a fall of the meter is held back because EV
    dips could explain it, ``computed_at`` is when the allocation ran.
    """

    allocation: ZoneAllocation
    reductions: tuple[ZoneReductionFigure, ...]
    held_since: datetime | None
    computed_at: datetime | None

    @property
    def zone_id(self) -> int:
        return self.allocation.zone_id

    @classmethod
    def from_hot(cls, zone_id: int, record: Mapping[str, Any]) -> ZoneFigures:
        return cls(
            allocation=ZoneAllocation(
                zone_id=zone_id,
                limit_a=float(record.get("limit_a") or 0.0),
                reduction_percent=record.get("reduction_percent"),
                meter_lost=bool(record.get("meter_lost")),
                production_lost=bool(record.get("production_lost")),
                other_loads_a=_phase_amps(record.get("other_loads_a")),
                production_a=_zero_if_none(record.get("production_a")),
                grid_available_a=_zero_if_none(record.get("grid_available_a")),
                available_a=_zero_if_none(record.get("available_a")),
                reserved_a=_zero_if_none(record.get("reserved_a")),
                allocated_a=_zero_if_none(record.get("allocated_a")),
                headroom_a=_zero_if_none(record.get("headroom_a")),
                session_count=int(record.get("session_count") or 0),
                charging_count=int(record.get("charging_count") or 0),
                held_meter_current_a=_phase_amps(record.get("held_meter_current_a")),
            ),
            reductions=tuple(
                ZoneReductionFigure(
                    source=item.get("source", ""),
                    percent=item.get("percent"),
                    current_a=item.get("current_a"),
                    description=item.get("description", ""),
                    valid_until=(
                        datetime.fromisoformat(item["valid_until"])
                        if item.get("valid_until")
                        else None
                    ),
                )
                for item in record.get("reductions") or ()
            ),
            held_since=_at(record.get("held_since_s")),
            computed_at=_at(record.get("at_s")),
        )


def zones_figures() -> dict[int, ZoneFigures]:
    """Every zone's figures from the last allocation, by zone id."""
    return {
        zone_id: ZoneFigures.from_hot(zone_id, record)
        for zone_id, record in sorted(state.zone_results().items())
    }


def zone_figures(zone_id: int) -> ZoneFigures | None:
    """A zone's figures from the last allocation (None: no allocation has seen it yet)."""
    return zones_figures().get(zone_id)


def _reason(value: str) -> Reason | str:
    try:
        return Reason(value)
    except ValueError:  # written by a newer version: shown as it is
        return value


def _setpoint(
    key: str,
    record: Mapping[str, Any],
    sent: Mapping[str, Any] | None,
    profiles: ConnectorProfiles | Mapping[str, Any] | None,
    *,
    allocated_at: datetime | None,
    now_s: float,
) -> ConnectorSetpoint:
    identity, _slash, connector_id = key.rpartition("/")
    transaction_id = record.get("transaction_id")
    accepted_a = accepted_at = valid_until = None
    if sent and sent.get("transaction_id") == transaction_id:
        accepted_a = float(sent["setpoint_a"])
        valid_until = _at(sent.get("valid_until_s"))
        history = sent.get("history") or []
        if history and history[-1][0] == sent["setpoint_a"]:
            accepted_at = _at(history[-1][2])
    envelope_a = (
        profiles.envelope_a(now_s, transaction_id)
        if isinstance(profiles, ConnectorProfiles)
        else None
    )
    limiting_phase = record.get("limiting_phase")
    wanted_a = record.get("wanted_a")
    return ConnectorSetpoint(
        key=key,
        station_identity=identity,
        connector_id=int(connector_id),
        station_id=record.get("station_id"),
        transaction_id=transaction_id,
        setpoint_a=float(record.get("setpoint_a") or 0.0),
        setpoint_w=record.get("setpoint_w"),
        reason=_reason(record.get("reason", "")),
        limiting_zone_id=record.get("limiting_zone_id"),
        limiting_phase=Phase(limiting_phase) if limiting_phase else None,
        phases=tuple(int(p) for p in record.get("phases") or ()),
        rank=record.get("rank"),
        vip=bool(record.get("vip")),
        delivery=record.get("delivery"),
        wanted_a=None if wanted_a is None else float(wanted_a),
        allocated_at=allocated_at,
        accepted_a=accepted_a,
        accepted_at=accepted_at,
        valid_until=valid_until,
        envelope_a=envelope_a,
    )


def connector_setpoints(
    *, station_identity: str | None = None, now_s: float | None = None
) -> dict[str, ConnectorSetpoint]:
    """The current setpoint of every session (or of one station's), by connector key.

    Only connectors with an ongoing session that the last allocation saw
    have one; ``now_s`` is when the profiles' envelope is evaluated.
    """
    now_s = time.time() if now_s is None else now_s
    prefix = f"{station_identity}/" if station_identity is not None else ""
    records = {k: v for k, v in state.session_results().items() if k.startswith(prefix)}
    if not records:
        return {}
    sent = state.last_sent_setpoints()
    profiles = state.connector_profiles()
    computed = [z["at_s"] for z in state.zone_results().values() if z.get("at_s") is not None]
    allocated_at = _at(max(computed)) if computed else None
    return {
        key: _setpoint(
            key,
            record,
            sent.get(key),
            profiles.get(key),
            allocated_at=allocated_at,
            now_s=now_s,
        )
        for key, record in sorted(records.items())
    }


def station_setpoints(identity: str, *, now_s: float | None = None) -> dict[int, ConnectorSetpoint]:
    """The current setpoint of each connector of a station with a session, by connector id."""
    return {
        item.connector_id: item
        for item in connector_setpoints(station_identity=identity, now_s=now_s).values()
    }


# --- what the REST API shows: zones and stations with their live figures ---------------


def _phase_list(values: PhaseAmps) -> tuple[float, float, float]:
    return (round(values[0], 1), round(values[1], 1), round(values[2], 1))


@dataclass(frozen=True, slots=True)
class ZoneStatus:
    """A zone's configuration with its live figures (SPEC §9 ``zones``).

    Per-phase figures are (L1, L2, L3); before the first allocation that saw
    the zone they are zeros and ``computed_at`` is None. ``meter_current_a`` /
    ``meter_power_w`` are the zone meter's last usable reading (None: a static
    zone, or its meter is lost or never read). ``ebms_reduction`` is the
    reduction in force from the database, so a write shows at once;
    ``reductions`` are those the last allocation applied.
    """

    zone: Zone
    stations_count: int
    figures: ZoneFigures | None
    meter_current_a: tuple[float, float, float] | None
    meter_power_w: tuple[float | None, float | None, float | None] | None
    setpoint_power_w: float
    ebms_reduction: EbmsReduction | None

    @property
    def zone_type(self) -> str:
        return "dynamic" if self.zone.is_dynamic else "static"

    @property
    def degraded(self) -> bool:
        return self.figures is not None and self.figures.allocation.meter_lost

    @property
    def sessions_count(self) -> int:
        return 0 if self.figures is None else self.figures.allocation.session_count

    def _per_phase(self, name: str) -> tuple[float, float, float]:
        if self.figures is None:
            return (0.0, 0.0, 0.0)
        return _phase_list(getattr(self.figures.allocation, name))

    @property
    def available_current_a(self) -> tuple[float, float, float]:
        return self._per_phase("available_a")

    @property
    def allocated_current_a(self) -> tuple[float, float, float]:
        return self._per_phase("allocated_a")

    @property
    def reserved_current_a(self) -> tuple[float, float, float]:
        return self._per_phase("reserved_a")

    @property
    def local_current_a(self) -> tuple[float, float, float]:
        return self._per_phase("production_a")

    @property
    def reductions(self) -> tuple[ZoneReductionFigure, ...]:
        return () if self.figures is None else self.figures.reductions


def _subtree_station_counts(zones: list[Zone]) -> dict[int, int]:
    """Stations in each zone and all the zones below it (zones are few: one pass each)."""
    own = dict(
        Station.objects.filter(zone__isnull=False)
        .values("zone_id")
        .annotate(n=Count("pk"))
        .values_list("zone_id", "n")
    )
    parents = {zone.pk: zone.parent_id for zone in zones}
    counts = dict.fromkeys(parents, 0)
    for zone_id, n in own.items():
        seen: set[int] = set()
        node: int | None = zone_id
        while node is not None and node in parents and node not in seen:
            seen.add(node)
            counts[node] += n
            node = parents[node]
    return counts


def zone_statuses(*, zone_id: int | None = None, now: datetime | None = None) -> list[ZoneStatus]:
    """Every zone (or one) with its live figures, in name order; a few queries for all."""
    now = now or timezone.now()
    zones = list(Zone.objects.order_by("name"))
    counts = _subtree_station_counts(zones)
    if zone_id is not None:
        zones = [zone for zone in zones if zone.pk == zone_id]
    figures = zones_figures()
    meters = meter_states([zone.meter_id for zone in zones if zone.meter_id is not None])
    reductions: dict[int, EbmsReduction] = {}
    for reduction in (
        EbmsReduction.objects.filter(zone__in=zones).in_force(now).order_by("created_at")
    ):
        reductions[reduction.zone_id] = reduction  # the latest wins, as the service keeps one
    voltage_v = float(SiteSettings.load().nominal_voltage_v)
    result = []
    for zone in zones:
        meter = meters.get(zone.meter_id) if zone.meter_id is not None else None
        currents = meter.usable_currents_a(now) if meter is not None else None
        powers = None
        if currents is not None:
            powers = tuple(
                None if (kw := meter.values.get(f"power_l{n}_kw")) is None else float(kw) * 1000
                for n in (1, 2, 3)
            )
        zone_figures_ = figures.get(zone.pk)
        allocated_a = zone_figures_.allocation.allocated_a if zone_figures_ else (0.0, 0.0, 0.0)
        result.append(
            ZoneStatus(
                zone=zone,
                stations_count=counts.get(zone.pk, 0),
                figures=zone_figures_,
                meter_current_a=None if currents is None else _phase_list(currents),
                meter_power_w=powers,
                setpoint_power_w=round(sum(allocated_a) * voltage_v, 1),
                ebms_reduction=reductions.get(zone.pk),
            )
        )
    return result


@dataclass(frozen=True, slots=True)
class ConnectorStatus:
    """A connector with its live setpoint and what it draws (SPEC §9 ``connectors``).

    ``setpoint`` is None when the connector has no session the last allocation
    saw. ``current_a`` (L1, L2, L3 of the connector's own phases) and
    ``power_w`` come from the last meter sample of the ongoing session.
    """

    connector: Connector
    setpoint: ConnectorSetpoint | None
    transaction: Transaction | None
    current_a: tuple[float | None, float | None, float | None] | None
    power_w: float | None
    voltage_v: float

    @property
    def setpoint_current_a(self) -> float | None:
        return None if self.setpoint is None else round(self.setpoint.setpoint_a, 1)

    @property
    def setpoint_power_w(self) -> float | None:
        if self.setpoint is None:
            return None
        if self.setpoint.setpoint_w is not None:
            return float(self.setpoint.setpoint_w)
        phases = len(self.setpoint.phases) or 1
        return round(self.setpoint.setpoint_a * phases * self.voltage_v, 1)

    @property
    def energy_wh(self) -> int | None:
        return None if self.transaction is None else self.transaction.energy_wh


@dataclass(frozen=True, slots=True)
class StationStatus:
    """A station with its connection and its connectors' live figures (SPEC §9 ``stations``)."""

    station: Station
    presence: StationPresence
    online: bool
    connectors: tuple[ConnectorStatus, ...]

    @property
    def last_seen(self) -> datetime | None:
        seen = _at(self.presence.last_seen_s)
        return seen or self.station.last_seen_at


def _last_samples(transactions: list[Transaction]) -> dict[int, MeterSample]:
    """The latest meter sample of each transaction, in two queries."""
    if not transactions:
        return {}
    latest = (
        MeterSample.objects.filter(transaction_id=OuterRef("pk"))
        .order_by("-sampled_at", "-pk")
        .values("pk")[:1]
    )
    sample_ids = [
        sample_id
        for sample_id in Transaction.objects.filter(pk__in=[t.pk for t in transactions])
        .annotate(last_sample_id=Subquery(latest))
        .values_list("last_sample_id", flat=True)
        if sample_id is not None
    ]
    return {s.transaction_id: s for s in MeterSample.objects.filter(pk__in=sample_ids)}


def station_statuses(
    *, identity: str | None = None, now_s: float | None = None
) -> list[StationStatus]:
    """Every station (or the one with box identity ``identity``) with live figures.

    In identity order; a fixed number of queries and Redis round trips
    whatever the number of stations.
    """
    now_s = time.time() if now_s is None else now_s
    stations = Station.objects.select_related("auth_group")
    if identity is not None:
        stations = stations.filter(identity__iexact=identity)
    stations = list(stations.order_by("identity"))
    if not stations:
        return []
    # Grouped by hand: a prefetch builds a queryset per station to hand them out.
    stations_by_pk = {station.pk: station for station in stations}
    connectors_of: dict[int, list[Connector]] = {pk: [] for pk in stations_by_pk}
    for connector in Connector.objects.filter(station_id__in=list(connectors_of)).order_by(
        "station_id", "connector_id"
    ):
        connector.station = stations_by_pk[connector.station_id]  # no query when asked
        connectors_of[connector.station_id].append(connector)
    identities = [station.identity for station in stations]
    seen = presence.last_seen_many(identities)
    site = SiteSettings.load()
    heartbeat_s = float(site.heartbeat_interval_s)
    setpoints = connector_setpoints(
        station_identity=identities[0] if identity is not None else None, now_s=now_s
    )
    sessions = {
        (tx.station_id, tx.connector_id): tx
        for tx in Transaction.objects.filter(
            station__in=stations, stopped_at__isnull=True
        ).order_by("started_at", "pk")
    }
    samples = _last_samples(list(sessions.values()))
    voltage_v = float(site.nominal_voltage_v)
    result = []
    for station in stations:
        connection = StationPresence(
            station.identity,
            connected=station.identity in seen,
            last_seen_s=seen.get(station.identity),
        )
        connectors = []
        for connector in connectors_of[station.pk]:
            tx = sessions.get((station.pk, connector.connector_id))
            sample = samples.get(tx.pk) if tx is not None else None
            setpoint = setpoints.get(f"{station.identity}/{connector.connector_id}")
            if setpoint is not None and tx is not None and setpoint.transaction_id != tx.pk:
                setpoint = None  # the allocation saw an earlier session
            connectors.append(
                ConnectorStatus(
                    connector=connector,
                    setpoint=setpoint,
                    transaction=tx,
                    current_a=(
                        None
                        if sample is None
                        else (sample.current_l1_a, sample.current_l2_a, sample.current_l3_a)
                    ),
                    power_w=None if sample is None else sample.power_w,
                    voltage_v=voltage_v,
                )
            )
        result.append(
            StationStatus(
                station=station,
                presence=connection,
                online=connection.is_online(now_s, heartbeat_interval_s=heartbeat_s),
                connectors=tuple(connectors),
            )
        )
    return result


@dataclass(frozen=True, slots=True)
class SiteStatus:
    """The whole site at a glance (SPEC §9 ``site``).

    Figures "at the top" add up the zones without a parent: the measured
    current and power (None when no top zone has a usable meter reading) and
    the setpoints the last allocation gave there. ``sessions`` counts the
    running sessions by their status (lowercase OCPP).
    """

    name: str
    supervision_mode: str
    zones_count: int
    stations_count: int
    connectors_count: int
    stations_connected: int
    sessions: dict[str, int]
    current_a: tuple[float, float, float] | None
    power_w: float | None
    setpoint_current_a: tuple[float, float, float]
    setpoint_power_w: float


def site_status(*, now: datetime | None = None) -> SiteStatus:
    """A few queries and two Redis reads, whatever the number of stations."""
    site = SiteSettings.load()
    zones = zone_statuses(now=now)
    top = [status for status in zones if status.zone.parent_id is None]
    measured = [status for status in top if status.meter_current_a is not None]
    current_a = None
    power_w = None
    if measured:
        current_a = _phase_list(
            tuple(sum(s.meter_current_a[n] for s in measured) for n in range(3))  # type: ignore[index]
        )
        powers = [p for s in measured for p in (s.meter_power_w or ()) if p is not None]
        power_w = round(sum(powers), 1) if powers else None
    setpoint_a = _phase_list(tuple(sum(s.allocated_current_a[n] for s in top) for n in range(3)))
    sessions = dict(
        Transaction.objects.filter(stopped_at__isnull=True)
        .values("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    installed = Station.objects.filter(state=StationState.INSTALLED)
    counts = station_counts()
    return SiteStatus(
        name=site.name,
        supervision_mode=site.supervision_mode,
        zones_count=len(zones),
        stations_count=counts.total,
        connectors_count=Connector.objects.filter(station__in=installed).count(),
        stations_connected=counts.online,
        sessions={status.lower(): n for status, n in sessions.items()},
        current_a=current_a,
        power_w=power_w,
        setpoint_current_a=setpoint_a,
        setpoint_power_w=round(sum(s.setpoint_power_w for s in top), 1),
    )
