"""What the dashboard pages show, gathered from the apps that own it.

The pages render what these functions return and nothing else; a live
refresh calls them again (the feed carries no figures).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from django.urls import reverse
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from apps.central_system.models import CommandResult, CommandStatus
from apps.dashboard.charts import PhaseChart, phase_chart
from apps.dashboard.reasons import reason_words
from apps.energy.selectors import (
    ConnectorSetpoint,
    ConnectorStatus,
    StationStatus,
    ZoneFigures,
    station_statuses,
    zones_figures,
)
from apps.energy.snapshot import station_offline_currents
from apps.meters.selectors import MeterPoint, meter_history, meter_state
from apps.rfid.models import Card, StationAuthState
from apps.stations.models import PHASE_WIRING_LABELS, Station, StationState, Transaction
from apps.zones.models import Zone

# --- zones ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ZoneRow:
    """A zone of the tree, depth first, with its live figures (None: not allocated yet)."""

    id: int
    name: str
    depth: int
    max_current_a: float
    dynamic: bool
    figures: ZoneFigures | None


def _zone_tree(zones: list[dict], root_id: int | None) -> list[tuple[dict, int]]:
    """Zones depth first (children by name), from the roots or from ``root_id`` included."""
    children: dict[int | None, list[dict]] = {}
    by_id = {zone["id"]: zone for zone in zones}
    for zone in zones:
        children.setdefault(zone["parent_id"], []).append(zone)
    ordered: list[tuple[dict, int]] = []

    def visit(parent_id: int | None, depth: int) -> None:
        for zone in children.get(parent_id, ()):
            ordered.append((zone, depth))
            visit(zone["id"], depth + 1)

    if root_id is None:
        visit(None, 0)
    elif root_id in by_id:
        ordered.append((by_id[root_id], 0))
        visit(root_id, 1)
    return ordered


def _zones() -> list[dict]:
    return list(
        Zone.objects.order_by("name").values("id", "name", "parent_id", "max_current_a", "meter_id")
    )


def zone_rows(*, root_id: int | None = None) -> list[ZoneRow]:
    """Every zone (or a zone and its sub-zones), each parent before its sub-zones."""
    figures = zones_figures()
    return [
        ZoneRow(
            id=zone["id"],
            name=zone["name"],
            depth=depth,
            max_current_a=float(zone["max_current_a"]),
            dynamic=zone["meter_id"] is not None,
            figures=figures.get(zone["id"]),
        )
        for zone, depth in _zone_tree(_zones(), root_id)
    ]


# --- stations and sessions ------------------------------------------------------------


# What reverse() leaves unescaped in a path argument (RFC 3986 sub-delimiters and ``~:@``).
_PATH_SAFE = "!$&'()*+,;=~:@"


def station_url(identity: str) -> str:
    """``reverse("dashboard:station", …)`` without resolving the pattern for each of 1000 rows."""
    prefix = reverse("dashboard:station", args=["-"]).removesuffix("-/")
    return f"{prefix}{quote(identity, safe=_PATH_SAFE)}/"


#: The fleet's statuses as SPEC §7 lists them, in the order the chart shows them.
FLEET_STATUSES: dict[str, Promise] = {
    "Available": _("Available"),
    "Preparing": _("Preparing"),
    "Charging": _("Charging"),
    "SuspendedEV": _("Suspended by the vehicle"),
    "SuspendedEVSE": _("Suspended by the system"),
    "Finishing": _("Finishing"),
    "Reserved": _("Reserved"),
    "Faulted": _("Faulted"),
    "Unavailable": _("Unavailable"),
    "Offline": _("Offline / unknown"),
}
# Which connector status speaks for a station with several connectors.
_PRECEDENCE = (
    "Charging",
    "SuspendedEVSE",
    "SuspendedEV",
    "Preparing",
    "Finishing",
    "Reserved",
    "Unavailable",
    "Available",
)
CHARGING = "Charging"


def fleet_status(status: StationStatus) -> str:
    """One status per station: Offline when not online, Faulted when anything is, else the
    busiest connector's (a charging connector says more than an available one)."""
    if not status.online:
        return "Offline"
    statuses = {item.connector.status for item in status.connectors}
    if status.station.status == "Faulted" or "Faulted" in statuses:
        return "Faulted"
    for candidate in _PRECEDENCE:
        if candidate in statuses:
            return candidate
    if status.station.status in FLEET_STATUSES:
        return status.station.status
    return "Offline"


@dataclass(frozen=True, slots=True)
class StationRow:
    """A station as the tables show it; the words are worked out once (a table has 1000)."""

    status: StationStatus
    fleet_status: str
    status_label: str
    zone_name: str
    url: str
    wiring: str  # the connectors' phase wirings in words, "" when none

    @property
    def station(self) -> Station:
        return self.status.station

    @property
    def connectors(self) -> tuple[ConnectorStatus, ...]:
        return self.status.connectors


def _station_row(status: StationStatus, zone_names: dict[int, str]) -> StationRow:
    key = fleet_status(status)
    return StationRow(
        status=status,
        fleet_status=key,
        status_label=str(FLEET_STATUSES.get(key, key)),
        zone_name=zone_names.get(status.station.zone_id or -1, ""),
        url=station_url(status.station.identity),
        wiring=", ".join(
            sorted(
                {
                    str(
                        PHASE_WIRING_LABELS.get(
                            item.connector.phase_wiring, item.connector.phase_wiring
                        )
                    )
                    for item in status.connectors
                }
            )
        ),
    )


@dataclass(frozen=True, slots=True)
class FleetBar:
    key: str
    label: str
    count: int
    percent: float


@dataclass(frozen=True, slots=True)
class SessionRow:
    """An ongoing session with its live setpoint, the reason in words and what it draws."""

    transaction: Transaction
    station: Station
    connector_id: int
    connector_status: str
    setpoint: ConnectorSetpoint | None
    reason: str
    consumption_a: float | None
    charging_duration_s: int

    @property
    def url(self) -> str:
        return station_url(self.station.identity)

    @property
    def energy_kwh(self) -> float:
        return (self.transaction.energy_wh or 0) / 1000

    @property
    def phases(self) -> int | None:
        if self.transaction.phases_used:
            return self.transaction.phases_used
        return len(self.setpoint.phases) if self.setpoint and self.setpoint.phases else None

    @property
    def charging_duration(self) -> str:
        minutes, _seconds = divmod(self.charging_duration_s, 60)
        hours, minutes = divmod(minutes, 60)
        return f"{hours}:{minutes:02d}"


def _session_row(
    status: StationStatus, item: ConnectorStatus, zone_names: dict[int, str], now: datetime
) -> SessionRow:
    tx = item.transaction
    assert tx is not None
    duration_s = int(tx.charging_duration_s or 0)
    connector = item.connector
    if connector.status == CHARGING and connector.status_at is not None:
        since = max(connector.status_at, tx.started_at or connector.status_at)
        duration_s += max(0, int((now - since).total_seconds()))
    consumption = None
    if item.current_a is not None and any(c is not None for c in item.current_a):
        consumption = max(c for c in item.current_a if c is not None)
    elif tx.consumption_a is not None:
        consumption = float(tx.consumption_a)
    return SessionRow(
        transaction=tx,
        station=status.station,
        connector_id=connector.connector_id,
        connector_status=connector.status,
        setpoint=item.setpoint,
        reason=reason_words(item.setpoint, zone_names),
        consumption_a=consumption,
        charging_duration_s=duration_s,
    )


@dataclass(frozen=True, slots=True)
class Overview:
    """The global view, or a zone's: its zones, fleet, sessions and stations."""

    zones: list[ZoneRow]
    fleet: list[FleetBar]
    sessions: list[SessionRow]
    stations: list[StationRow]


def _subtree_ids(zones: list[dict], root_id: int) -> set[int]:
    return {zone["id"] for zone, _depth in _zone_tree(zones, root_id)}


def overview(*, zone_id: int | None = None, now_s: float | None = None) -> Overview:
    """Everything the global view shows; with ``zone_id``, only that zone and its sub-zones."""
    now_s = time.time() if now_s is None else now_s
    now = datetime.fromtimestamp(now_s, tz=UTC)
    zones = _zones()
    zone_names = {zone["id"]: zone["name"] for zone in zones}
    statuses = [
        status
        for status in station_statuses(now_s=now_s)
        if status.station.state == StationState.INSTALLED
    ]
    if zone_id is not None:
        inside = _subtree_ids(zones, zone_id)
        statuses = [status for status in statuses if status.station.zone_id in inside]
    rows = [_station_row(status, zone_names) for status in statuses]
    counts = dict.fromkeys(FLEET_STATUSES, 0)
    for row in rows:
        counts[row.fleet_status] = counts.get(row.fleet_status, 0) + 1
    total = max(len(rows), 1)
    fleet = [
        FleetBar(key=key, label=str(label), count=counts[key], percent=100 * counts[key] / total)
        for key, label in FLEET_STATUSES.items()
    ]
    sessions = sorted(
        (
            _session_row(status, item, zone_names, now)
            for status in statuses
            for item in status.connectors
            if item.transaction is not None
        ),
        key=lambda row: (row.transaction.started_at or now, row.transaction.pk),
    )
    return Overview(
        zones=zone_rows(root_id=zone_id),
        fleet=fleet,
        sessions=sessions,
        stations=rows,
    )


# --- a zone's own figures ---------------------------------------------------------------

CHART_PERIOD = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class PhaseRepartition:
    """One phase of a zone: its limit split into allocated, reserved and what is left."""

    phase: str
    limit_a: float
    allocated_a: float
    reserved_a: float
    grid_available_a: float
    local_a: float
    available_a: float
    other_loads_a: float | None
    meter_a: float | None

    def _percent(self, amps: float) -> float:
        return 0.0 if self.limit_a <= 0 else max(0.0, min(100.0, 100 * amps / self.limit_a))

    @property
    def allocated_percent(self) -> float:
        return self._percent(self.allocated_a)

    @property
    def reserved_percent(self) -> float:
        return self._percent(self.reserved_a)

    @property
    def other_percent(self) -> float:
        return self._percent(self.other_loads_a or 0.0)


@dataclass(frozen=True, slots=True)
class ZoneDetail:
    zone: Zone
    figures: ZoneFigures | None
    repartition: list[PhaseRepartition]
    meter_chart: PhaseChart | None


def zone_detail(zone_id: int, *, now: datetime | None = None) -> ZoneDetail | None:
    """A zone's repartition per phase and, for a dynamic zone, its meter's last 15 minutes."""
    zone = Zone.objects.filter(pk=zone_id).first()
    if zone is None:
        return None
    now = now or timezone.now()
    figures = zones_figures().get(zone.pk)
    meter_currents: tuple[float, float, float] | None = None
    chart = None
    if zone.meter_id is not None:
        state = meter_state(zone.meter_id)
        meter_currents = state.usable_currents_a(now)
        start = now - CHART_PERIOD
        points = meter_history(zone.meter_id, since=start)
        latest = state.read_at
        if (
            latest is not None
            and state.currents_a is not None
            and (not points or latest > points[-1].at)
        ):
            points.append(MeterPoint(at=min(latest, now), current_a=state.currents_a))
        limit_a = figures.allocation.limit_a if figures else float(zone.max_current_a)
        chart = phase_chart(points, start=start, end=now, limit_a=limit_a)
    repartition = []
    if figures is not None:
        allocation = figures.allocation
        for index, phase in enumerate(("L1", "L2", "L3")):
            repartition.append(
                PhaseRepartition(
                    phase=phase,
                    limit_a=allocation.limit_a,
                    allocated_a=allocation.allocated_a[index],
                    reserved_a=allocation.reserved_a[index],
                    grid_available_a=allocation.grid_available_a[index],
                    local_a=allocation.production_a[index],
                    available_a=allocation.available_a[index],
                    other_loads_a=(
                        None
                        if allocation.other_loads_a is None
                        else allocation.other_loads_a[index]
                    ),
                    meter_a=None if meter_currents is None else meter_currents[index],
                )
            )
    return ZoneDetail(zone=zone, figures=figures, repartition=repartition, meter_chart=chart)


# --- a station's own page ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommandRow:
    """A remote command and the station's answer, as the station view lists them."""

    result: CommandResult
    outcome: str  # accepted | rejected | offline | timeout | error | waiting

    @property
    def words(self) -> str:
        result = self.result
        if self.outcome == "waiting":
            return str(_("waiting for the station…"))
        if self.outcome == "offline":
            return str(_("offline: the station is not connected"))
        if self.outcome == "timeout":
            return str(_("timeout: no answer in time"))
        if self.outcome == "error":
            detail = result.error_code or result.error_description
            return str(_("error: %(detail)s") % {"detail": detail})
        status = result.response.get("status", "")
        if self.outcome == "accepted":
            return (
                str(_("accepted (%(status)s)") % {"status": status})
                if status
                else str(_("accepted"))
            )
        return str(_("rejected (%(status)s)") % {"status": status})


# A station's own word for success: Accepted, Unlocked (UnlockConnector), Scheduled
# (ChangeAvailability after the charge); a GetDiagnostics answer has no status.
_ACCEPTED = {"Accepted", "Unlocked", "Scheduled", ""}


def command_outcome(result: CommandResult) -> str:
    if result.status in (CommandStatus.PENDING, CommandStatus.SENDING):
        return "waiting"
    if result.status == CommandStatus.OFFLINE:
        return "offline"
    if result.status == CommandStatus.TIMEOUT:
        return "timeout"
    if result.status == CommandStatus.ANSWERED:
        return "accepted" if result.response.get("status", "") in _ACCEPTED else "rejected"
    return "error"


def station_commands(identity: str, *, limit: int = 8) -> list[CommandRow]:
    results = CommandResult.objects.filter(station_identity=identity).order_by(
        "-requested_at", "-id"
    )[:limit]
    return [CommandRow(result=result, outcome=command_outcome(result)) for result in results]


@dataclass(frozen=True, slots=True)
class ConnectorRow:
    """A connector on the station view: its state, setpoint with the reason, what it draws."""

    status: ConnectorStatus
    reason: str
    offline_current_a: float | None

    @property
    def profile_refused(self) -> bool:
        """The station refused (or did not answer) the last profile evce sent it."""
        setpoint = self.status.setpoint
        return setpoint is not None and not setpoint.applied


@dataclass(frozen=True, slots=True)
class StationDetail:
    row: StationRow
    online: bool
    connectors: list[ConnectorRow]
    sessions: list[SessionRow]
    auth_state: StationAuthState | None
    commands: list[CommandRow]


def station_detail(identity: str, *, now_s: float | None = None) -> StationDetail | None:
    """Everything the station view shows but its OCPP log (None: no such station)."""
    now_s = time.time() if now_s is None else now_s
    now = datetime.fromtimestamp(now_s, tz=UTC)
    statuses = station_statuses(identity=identity, now_s=now_s)
    if not statuses:
        return None
    status = statuses[0]
    station = status.station
    zone_names = dict(Zone.objects.values_list("id", "name"))
    offline = station_offline_currents(station)
    connectors = [
        ConnectorRow(
            status=item,
            reason=reason_words(item.setpoint, zone_names) if item.transaction else "",
            offline_current_a=(
                offline[item.connector.connector_id].current_a
                if item.connector.connector_id in offline
                else None
            ),
        )
        for item in status.connectors
    ]
    return StationDetail(
        row=_station_row(status, zone_names),
        online=status.online,
        connectors=connectors,
        sessions=[
            _session_row(status, item, zone_names, now)
            for item in status.connectors
            if item.transaction is not None
        ],
        auth_state=StationAuthState.objects.filter(station=station).first(),
        commands=station_commands(station.identity),
    )


def start_cards(*, limit: int = 500) -> list[str]:
    """Id tags offered for a remote start: authorised cards, by id tag."""
    return list(
        Card.objects.filter(authorized=True)
        .order_by("id_tag")
        .values_list("id_tag", flat=True)[:limit]
    )
