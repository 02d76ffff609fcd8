"""One run of the control loop: snapshot → allocator → deliver what changed.

Delivery sends only what must change (the allocator's deadband decides), plus
renewals of live profiles whose lease is half gone, plus fallback profiles whose
offline current changed. What a station accepted is recorded as sent; what it
refused or did not answer is retried on the next run, because the recorded
value is what the deadband compares with.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from apps.central_system import command_loop
from apps.energy import profiles, state
from apps.energy.allocator import Allocation, Reason, SessionAllocation, allocate
from apps.energy.snapshot import ConnectorRef, SnapshotContext, build_snapshot
from apps.maintenance.models import EventCategory, EventLevel
from apps.maintenance.services import device_log_write
from apps.meters.services import meters_allocation_basis_set
from apps.stations.models import Transaction

logger = logging.getLogger(__name__)

SUSPENDED_REASONS = {
    Reason.SHED_PRIORITY,
    Reason.NO_CAPACITY,
    Reason.IMBALANCE_LIMIT,
    Reason.IDLE_SUSPENDED,
}
DELIVERY_TIMEOUT_S = 10.0


@dataclass
class Delivery:
    """One SetChargingProfile to send, and what to record when it is accepted.

    ``lowers`` marks a setpoint below what the station was last given (or a
    fallback): those go out first, so that the stations giving current back
    have done so before others are allowed more.
    """

    ref: ConnectorRef
    payload: dict
    kind: str  # "live" | "fallback"
    sent_entry: dict = field(default_factory=dict)
    fallback_a: float | None = None
    lowers: bool = False
    raises: bool = False
    previous_entry: dict | None = None
    sent_at_s: float = 0.0
    answered_at_s: float = 0.0


@dataclass
class RebalanceOutcome:
    sessions: int
    sent: int
    accepted: int
    failed: int
    allocation: Allocation


def lease_s() -> float:
    return float(getattr(settings, "SETPOINT_LEASE_S", 120))


def rebalance_once(
    *, now: datetime | None = None, capacity_changed: bool = False
) -> RebalanceOutcome:
    """Allocate every connector and deliver the setpoints that must change."""
    now = now or timezone.now()
    started = time.perf_counter()
    context = build_snapshot(now=now, capacity_changed=capacity_changed)
    snapshot_done = time.perf_counter()
    allocation = allocate(context.snapshot)
    allocated = time.perf_counter()
    previous_sessions = state.session_results()
    deliveries = _plan_deliveries(context, allocation)
    results = command_loop.run(_deliver_all(deliveries)) if deliveries else []
    delivered = time.perf_counter()
    accepted = _record_deliveries(deliveries, results)
    _ask_for_samples_after_ramp(deliveries, results)
    if deliveries:
        logger.info(
            "Re-allocation: %d sessions, %d profiles sent (%d accepted); snapshot %.0f ms, "
            "allocation %.0f ms, delivery %.0f ms",
            len(allocation.sessions),
            len(deliveries),
            accepted,
            1000 * (snapshot_done - started),
            1000 * (allocated - snapshot_done),
            1000 * (delivered - allocated),
        )
    _store_results(
        context,
        allocation,
        results_by_key={
            d.ref.key: r for d, r in zip(deliveries, results, strict=True) if d.kind == "live"
        },
    )
    _log_changes(context, allocation, previous_sessions, context.previous_zones)
    _update_transactions(context, allocation)
    return RebalanceOutcome(
        sessions=len(allocation.sessions),
        sent=len(deliveries),
        accepted=accepted,
        failed=len(deliveries) - accepted,
        allocation=allocation,
    )


def _plan_deliveries(context: SnapshotContext, allocation: Allocation) -> list[Delivery]:
    now_s = allocation.now_s
    valid_until_s = now_s + lease_s()
    sent = state.last_sent_setpoints()
    deliveries: list[Delivery] = []
    for item in allocation.sessions:
        ref = context.refs[item.key]
        last = sent.get(item.key) or {}
        renew = last.get("transaction_id") != ref.transaction_id or (
            float(last.get("valid_until_s") or 0) - now_s < lease_s() / 2
        )
        if not (item.changed or renew):
            continue
        same_tx = last.get("transaction_id") == ref.transaction_id
        lowers = same_tx and _below(item.setpoint_a, item.setpoint_w, last)
        before_a = float(last.get("setpoint_a") or 0) if same_tx else context.offline_a[item.key]
        raises = ref.current_type == "AC" and item.setpoint_a > before_a
        deliveries.append(
            Delivery(
                ref=ref,
                kind="live",
                lowers=lowers,
                raises=raises,
                previous_entry=last or None,
                payload=profiles.live_profile(
                    ref.connector_id,
                    transaction_id=ref.transaction_id,
                    current_a=item.setpoint_a,
                    power_w=item.setpoint_w,
                    now_s=now_s,
                    valid_until_s=valid_until_s,
                ),
                sent_entry={
                    "transaction_id": ref.transaction_id,
                    "setpoint_a": item.setpoint_a,
                    "setpoint_w": item.setpoint_w,
                    "reason": item.reason.value,
                    "at_s": now_s,
                    "valid_until_s": valid_until_s,
                    "idle_since_s": item.idle_since_s,
                },
            )
        )
    defaults = state.default_profiles_sent()
    for key, ref in context.installed_connectors.items():
        if ref.station_id not in context.connected_station_ids:
            continue
        offline_a = context.offline_a[key]
        if defaults.get(key) == offline_a:
            continue
        deliveries.append(
            Delivery(
                ref=ref,
                kind="fallback",
                payload=profiles.fallback_profile(
                    ref.connector_id, current_a=offline_a, power_w=context.offline_w.get(key)
                ),
                fallback_a=offline_a,
                lowers=True,
            )
        )
    return deliveries


def _below(setpoint_a: float, setpoint_w: float | None, last: dict) -> bool:
    if setpoint_w is not None and last.get("setpoint_w") is not None:
        return setpoint_w < float(last["setpoint_w"])
    return setpoint_a < float(last.get("setpoint_a") or 0)


async def _deliver_all(deliveries: list[Delivery]) -> list[str]:
    """Send the profiles in two waves; one status or error per delivery.

    Decreases first, all at once; increases once those are answered, so no
    station takes more before the others have given their share back.
    """
    results: list[str] = [""] * len(deliveries)
    for lowers in (True, False):
        positions = [i for i, d in enumerate(deliveries) if d.lowers is lowers]
        if positions:
            answers = await _deliver_wave([deliveries[i] for i in positions])
            for position, answer in zip(positions, answers, strict=True):
                results[position] = answer
    return results


async def _deliver_wave(wave: list[Delivery]) -> list[str]:
    from apps.central_system import commands

    sent_at_s = time.time()  # before any station can have applied its profile
    outcomes = await commands.call_many(
        [(d.ref.identity, "SetChargingProfile", d.payload) for d in wave],
        timeout_s=DELIVERY_TIMEOUT_S,
    )

    async def result_of(delivery: Delivery, outcome: commands.Outcome) -> str:
        delivery.sent_at_s, delivery.answered_at_s = sent_at_s, outcome.at_s
        if isinstance(outcome.result, Exception):
            return f"error: {outcome.result}"
        status = str(outcome.result.get("status", "Unknown"))
        if status != "Accepted" and delivery.kind == "live":
            status = await _retry_as_station_max(delivery, status)
            delivery.answered_at_s = time.time()
        return status

    return list(
        await asyncio.gather(
            *(result_of(d, outcome) for d, outcome in zip(wave, outcomes, strict=True))
        )
    )


async def _retry_as_station_max(delivery: Delivery, status: str) -> str:
    """A station that refuses TxProfile may take the setpoint as a station maximum."""
    from apps.central_system import commands
    from apps.stations.models import Connector

    count = await Connector.objects.filter(station_id=delivery.ref.station_id).acount()
    if count != 1:
        return status
    entry = delivery.sent_entry
    payload = profiles.station_max_profile(
        current_a=entry["setpoint_a"],
        power_w=entry["setpoint_w"],
        now_s=entry["at_s"],
        valid_until_s=entry["valid_until_s"],
    )
    try:
        answer = await commands.call(
            delivery.ref.identity, "SetChargingProfile", payload, timeout_s=DELIVERY_TIMEOUT_S
        )
    except commands.CommandError as exc:
        return f"error: {exc}"
    return (
        "Accepted"
        if answer.get("status") == "Accepted"
        else f"{status} (TxProfile and ChargePointMaxProfile)"
    )


def _ask_for_samples_after_ramp(deliveries: list[Delivery], results: list[str]) -> None:
    """Ask stations whose setpoint went up for a sample once their EV had time to follow.

    Until a sample shows the EV on its new setpoint, its ramp is an estimate
    (see :func:`apps.energy.snapshot.ramping_to_a`); waiting for the periodic
    sample would leave that estimate standing for up to a sample interval.
    """
    raised = [
        d.ref
        for d, result in zip(deliveries, results, strict=True)
        if d.kind == "live" and d.raises and result == "Accepted"
    ]
    if raised:
        command_loop.run_later(float(settings.EV_RAMP_S), lambda: ask_for_samples(raised))


async def ask_for_samples(refs: list[ConnectorRef]) -> None:
    """TriggerMessage MeterValues to each connector; a station that cannot is left alone."""
    from apps.central_system import commands

    outcomes = await commands.call_many(
        [
            (ref.identity, *commands.trigger_message("MeterValues", connector_id=ref.connector_id))
            for ref in refs
        ],
        timeout_s=DELIVERY_TIMEOUT_S,
    )
    for ref, outcome in zip(refs, outcomes, strict=True):
        if isinstance(outcome.result, Exception):
            logger.debug("No sample asked of %s: %s", ref.key, outcome.result)


def _record_deliveries(deliveries: list[Delivery], results: list[str]) -> int:
    live: dict[str, dict] = {}
    fallback: dict[str, float] = {}
    accepted = 0
    for delivery, result in zip(deliveries, results, strict=True):
        if result != "Accepted":
            device_log_write(
                category=EventCategory.LOAD_MANAGEMENT,
                level=EventLevel.WARNING,
                event="profile_refused",
                message=f"{delivery.ref.key}: {delivery.kind} profile not applied ({result}).",
                station_identity=delivery.ref.identity,
                data={"payload": delivery.payload, "result": result},
            )
            continue
        accepted += 1
        if delivery.kind == "live":
            live[delivery.ref.key] = state.with_history(
                delivery.sent_entry,
                delivery.previous_entry,
                sent_at_s=delivery.sent_at_s,
                accepted_at_s=delivery.answered_at_s,
            )
        else:
            fallback[delivery.ref.key] = delivery.fallback_a
    state.record_sent(live)
    state.record_default_profiles(fallback)
    return accepted


def _store_results(
    context: SnapshotContext, allocation: Allocation, results_by_key: dict[str, str]
) -> None:
    sessions = {
        item.key: {
            "station_id": context.refs[item.key].station_id,
            "transaction_id": context.refs[item.key].transaction_id,
            "setpoint_a": item.setpoint_a,
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
    meters_allocation_basis_set(context.meter_readings)
    inputs = {zone.zone_id: zone for zone in context.snapshot.zones}
    zones = {
        zone.zone_id: {
            "limit_a": zone.limit_a,
            "reduction_percent": zone.reduction_percent,
            "meter_lost": zone.meter_lost,
            "production_lost": zone.production_lost,
            "other_loads_a": zone.other_loads_a,
            "held_meter_current_a": zone.held_meter_current_a,
            "held_since_s": state.held_since_s(
                context.previous_zones.get(zone.zone_id),
                zone.held_meter_current_a,
                inputs[zone.zone_id].meter_current_a,
                allocation.now_s,
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


def _describe(item: SessionAllocation) -> str:
    where = (
        f" (zone {item.limiting_zone_id} L{int(item.limiting_phase)})"
        if item.limiting_phase
        else ""
    )
    return f"{item.reason.value}{where}"


def _log_changes(
    context: SnapshotContext, allocation: Allocation, previous_sessions: dict, previous_zones: dict
) -> None:
    """Device-log every change of state a facility manager asks about afterwards."""
    for item in allocation.sessions:
        before = previous_sessions.get(item.key)
        was_suspended = before is not None and before.get("setpoint_a", 0) == 0
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
    for description in sorted(current - previous):
        device_log_write(
            category=EventCategory.LOAD_MANAGEMENT,
            event="reduction_applied",
            message=f"Zone {zone_name}: {description} applies.",
            zone_name=zone_name,
            data={"reduction": description},
        )
    for description in sorted(previous - current):
        device_log_write(
            category=EventCategory.LOAD_MANAGEMENT,
            event="reduction_ended",
            message=f"Zone {zone_name}: {description} no longer applies.",
            zone_name=zone_name,
            data={"reduction": description},
        )


def _update_transactions(context: SnapshotContext, allocation: Allocation) -> None:
    """Keep the setpoint on the transaction row for the dashboard and the CDR."""
    from decimal import Decimal

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
