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

from ocpp.v16.enums import ChargingProfileStatus

from apps.energy import state
from apps.energy.allocator import Phase, PhaseAmps, Reason, ZoneAllocation
from apps.energy.allocator.envelope import ConnectorProfiles


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
    it. ``limiting_zone_id`` / ``limiting_phase`` name the zone phase that
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
