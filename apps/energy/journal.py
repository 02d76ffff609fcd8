"""What is kept of a run of the control loop once its profiles are delivered.

The setpoints with their reasons and the zone figures (hot state the next run
and the selectors read), the zones' dip holds, the setpoint on each
transaction row, and a device-log entry for every change of state a facility
manager asks about afterwards.
"""

from __future__ import annotations

from decimal import Decimal

from apps.devicelog.models import EventCategory, EventLevel
from apps.devicelog.services import device_log_write
from apps.energy import state
from apps.energy.allocator import Allocation, Reason, SessionAllocation
from apps.energy.snapshot import SnapshotContext
from apps.stations.models import Transaction


def store_results(
    context: SnapshotContext,
    allocation: Allocation,
    results_by_key: dict[str, str],
    in_force_by_key: dict[str, float] | None = None,
) -> None:
    """Keep what the run decided; ``in_force_by_key``: setpoints not (fully) sent yet.

    Such a session is stored at what its station holds, and at what the
    allocation gave it as ``wanted_a`` (as a held one is).
    """
    allocated = {item.key: item.setpoint_a for item in allocation.sessions}
    in_force = {
        key: value
        for key, value in (in_force_by_key or {}).items()
        if key in allocated and value != allocated[key]
    }
    sessions = {
        item.key: {
            "station_id": context.refs[item.key].station_id,
            "transaction_id": context.refs[item.key].transaction_id,
            "setpoint_a": in_force.get(item.key, item.setpoint_a),
            "wanted_a": item.setpoint_a if item.key in in_force else None,
            "setpoint_w": item.setpoint_w,
            "reason": item.reason.value,
            "limiting_zone_id": item.limiting_zone_id,
            "limiting_phase": int(item.limiting_phase) if item.limiting_phase else None,
            "phases": [int(p) for p in item.phases],
            "rank": item.rank,
            "vip": item.vip,
            "delivery": results_by_key.get(item.key),
        }
        for item in allocation.sessions
    }
    now_s = allocation.now_s
    for key, ref in context.held.items():
        if ref.transaction_id is None:
            continue
        profiles_ = context.profiles[key]
        live = profiles_.live_for(ref.transaction_id, now_s)
        sessions[key] = {
            "station_id": ref.station_id,
            "transaction_id": ref.transaction_id,
            # What the station may draw, not what evce asked of it.
            "setpoint_a": profiles_.envelope_a(now_s, ref.transaction_id),
            "setpoint_w": None,
            "reason": Reason.HELD.value,
            "limiting_zone_id": None,
            "limiting_phase": None,
            "phases": [p + 1 for p in sorted(context.connectors[key].wiring.building_phases)],
            "rank": None,
            "vip": False,
            "wanted_a": None if live is None else live.attempt_a,
            "delivery": results_by_key.get(key),
        }
    inputs = {zone.zone_id: zone for zone in context.snapshot.zones}
    zones = {
        zone.zone_id: {
            "limit_a": zone.limit_a,
            "reduction_percent": zone.reduction_percent,
            "meter_lost": zone.meter_lost,
            "production_lost": zone.production_lost,
            "other_loads_a": zone.other_loads_a,
            "held_meter_current_a": zone.held_meter_current_a,
            "ramping_a": zone.ramping_a,
            # The reading this run went by: what an estimate stands for once a hold ends.
            "meter_current_a": inputs[zone.zone_id].meter_current_a,
            **_dip_hold(
                context,
                zone.zone_id,
                state.held_since_s(
                    # A hold that ended now: a fall still held is a new one.
                    None
                    if zone.zone_id in context.holds_ended
                    else context.previous_zones.get(zone.zone_id),
                    zone.held_meter_current_a,
                    inputs[zone.zone_id].meter_current_a,
                    allocation.now_s,
                ),
            ),
            "production_a": zone.production_a,
            "grid_available_a": zone.grid_available_a,
            "available_a": zone.available_a,
            "reserved_a": zone.reserved_a,
            "allocated_a": zone.allocated_a,
            "headroom_a": zone.headroom_a,
            "session_count": zone.session_count,
            "charging_count": zone.charging_count,
            "reductions": [
                {
                    "source": r.source,
                    "percent": r.percent,
                    "current_a": r.current_a,
                    "description": r.description,
                    "valid_until": r.valid_until.isoformat() if r.valid_until else None,
                }
                for r in context.reductions.get(zone.zone_id, [])
            ],
            "at_s": allocation.now_s,
        }
        for zone in allocation.zones
    }
    state.save_results(allocation.ranking, sessions, zones)


def _dip_hold(context: SnapshotContext, zone_id: int, since_s: float | None) -> dict:
    """A zone's dip hold: since when.

    A fall of the meter that EV dips could explain is held back until every
    session below the zone has sent a sample taken after it began. When a
    hold begins, those stations are asked for a sample at once and the
    control loop looks again shortly, and again when the hold expires by
    itself, so that a building load that really fell is given to the EVs in
    seconds.
    """
    if since_s is None:
        return {"held_since_s": None}
    before = context.previous_zones.get(zone_id) or {}
    if before.get("held_since_s") != since_s:
        context.holds_begun.append((zone_id, since_s))
    return {"held_since_s": since_s}


def _describe(item: SessionAllocation) -> str:
    where = (
        f" (zone {item.limiting_zone_id} L{int(item.limiting_phase)})"
        if item.limiting_phase
        else ""
    )
    return f"{item.reason.value}{where}"


def log_changes(
    context: SnapshotContext, allocation: Allocation, previous_sessions: dict, previous_zones: dict
) -> None:
    """Device-log every change of state a facility manager asks about afterwards."""
    for item in allocation.sessions:
        before = previous_sessions.get(item.key)
        # What the last run allocated: its wanted value where the station held another.
        before_a = None
        if before is not None:
            before_a = before.get("wanted_a")
            if before_a is None:
                before_a = before.get("setpoint_a", 0)
        was_suspended = before_a == 0
        now_suspended = item.setpoint_a == 0
        if (
            before is not None
            and before.get("transaction_id") != context.refs[item.key].transaction_id
        ):
            before, was_suspended = None, False
        if now_suspended and not was_suspended:
            event = (
                "session_idle_suspended" if item.reason is Reason.IDLE_SUSPENDED else "session_shed"
            )
            message = f"{item.key}: suspended by the system ({_describe(item)})."
        elif was_suspended and not now_suspended:
            event, message = (
                "session_resumed",
                f"{item.key}: charging again at {item.setpoint_a} A.",
            )
        else:
            continue
        device_log_write(
            category=EventCategory.LOAD_MANAGEMENT,
            event=event,
            message=message,
            station_identity=context.refs[item.key].identity,
            data={"reason": item.reason.value, "setpoint_a": item.setpoint_a},
        )
    for zone in allocation.zones:
        before = previous_zones.get(zone.zone_id)
        name = context.zone_names.get(zone.zone_id, str(zone.zone_id))
        _log_reduction_changes(name, before, context.reductions.get(zone.zone_id, []))
        was_lost = bool(before and before.get("meter_lost"))
        if zone.meter_lost != was_lost and (before is not None or zone.meter_lost):
            device_log_write(
                category=EventCategory.LOAD_MANAGEMENT,
                level=EventLevel.WARNING if zone.meter_lost else EventLevel.INFO,
                event="degraded_entered" if zone.meter_lost else "degraded_left",
                message=(
                    f"Zone {name} runs on its degraded setpoint: its meter is lost."
                    if zone.meter_lost
                    else f"Zone {name} left degraded mode: its meter answers again."
                ),
                zone_name=name,
                data={"zone_id": zone.zone_id},
            )


def _log_reduction_changes(zone_name: str, before: dict | None, active: list) -> None:
    """Log reductions (TOU, inputs, EBMS) that came into force or ended since the last run."""
    if before is None:
        return
    previous = {r["description"] for r in before.get("reductions", [])}
    current = {r.description for r in active}
    changes = (
        ("reduction_applied", "applies", current - previous),
        ("reduction_ended", "no longer applies", previous - current),
    )
    for event, applies, descriptions in changes:
        for description in sorted(descriptions):
            device_log_write(
                category=EventCategory.LOAD_MANAGEMENT,
                event=event,
                message=f"Zone {zone_name}: {description} {applies}.",
                zone_name=zone_name,
                data={"reduction": description},
            )


def update_transactions(context: SnapshotContext, allocation: Allocation) -> None:
    """Keep the setpoint on the transaction row for the dashboard and the CDR."""
    by_tx = {context.refs[item.key].transaction_id: item for item in allocation.sessions}
    rows = list(Transaction.objects.filter(pk__in=by_tx.keys()).only("pk", "setpoint_a"))
    changed = []
    for row in rows:
        value = Decimal(str(round(by_tx[row.pk].setpoint_a, 1)))
        if row.setpoint_a != value:
            row.setpoint_a = value
            changed.append(row)
    if changed:
        Transaction.objects.bulk_update(changed, ["setpoint_a"])
