"""What one run of the control loop sends: from an allocation to the profiles.

Only what must change is sent (the allocator's deadband decides), plus
renewals of live profiles whose lease is half gone, plus the fallbacks the
budget needs (``allocator.transition``): within the live setpoint for
sessions, from what is left for idle connectors. Connectors held by a station
that did not follow are asked again every ``RETRY_S``, and for less at once
when the zone needs it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from django.conf import settings
from ocpp.v16.enums import Action, ChargingProfilePurposeType

from apps.central_system import commands
from apps.energy import profiles, state
from apps.energy.allocator import Allocation, Reason, allocate
from apps.energy.allocator.envelope import ConnectorProfiles, Slot
from apps.energy.allocator.transition import HeldConnector, IdleConnector, plan_changes
from apps.energy.allocator.units import current_to_power_w
from apps.energy.snapshot import ConnectorRef, SnapshotContext


@dataclass
class Delivery:
    """One SetChargingProfile to send, and what to record when it is answered.

    ``value_a`` is the current per phase the profile lets the connector draw
    (the DC power converted); ``raises_envelope`` marks a profile that would
    let the connector draw more than it may now: those wait for the budget
    (see ``allocator.transition``). ``raises`` marks an AC setpoint above the
    previous one (its EV then ramps up; a sample is asked for afterwards).
    ``held`` marks what is asked again of a station that did not follow.
    """

    ref: ConnectorRef
    payload: dict
    kind: str  # "live" | "fallback" | "clear_live"
    value_a: float = 0.0
    action: str = Action.set_charging_profile
    sent_entry: dict = field(default_factory=dict)
    raises_envelope: bool = False
    raises: bool = False
    previous_entry: dict | None = None
    valid_until_s: float | None = None
    sent_at_s: float = 0.0
    answered_at_s: float = 0.0
    priority: int = 0
    floor_a: float = 0.0
    settled_a: float = 0.0
    held: bool = False


def lease_s() -> float:
    return float(getattr(settings, "SETPOINT_LEASE_S", 120))


RETRY_S = 10.0
"""How often a profile a station refused or left unanswered is asked again."""


def plan_deliveries(context: SnapshotContext, allocation: Allocation) -> list[Delivery]:
    """Every profile this allocation needs (see ``allocator.transition.plan_changes``)."""
    now_s = allocation.now_s
    sent = state.last_sent_setpoints()
    due = []
    for item in allocation.sessions:
        ref = context.refs[item.key]
        last = sent.get(item.key) or {}
        renew = last.get("transaction_id") != ref.transaction_id or (
            float(last.get("valid_until_s") or 0) - now_s < lease_s() / 2
        )
        if item.changed or renew:
            due.append(item.key)
    floor_of = {}
    idle = []
    for key in context.idle:
        connector = context.connectors[key]
        phases = tuple(sorted(connector.wiring.building_phases))
        floor_of[key] = context.snapshot.settings.floor_a(len(phases))
        idle.append(
            IdleConnector(
                key,
                connector.zone_id,
                phases,
                context.offline_a[key],
                floor_of[key],
                context.profiles[key].fallback.confirmed_a,
            )
        )
    held = []
    wanted_of_held = _wanted_of_held(context)
    for key, ref in context.held.items():
        profiles_ = context.profiles[key]
        fallback = profiles_.fallback
        fallback_a = live_a = None
        if fallback.held and _due(fallback, now_s):
            wanted_a = fallback.attempt_a if fallback.attempt_a is not None else 0.0
            fallback_a = min(wanted_a, context.offline_a[key])
        live = profiles_.live_for(ref.transaction_id, now_s)
        clear_live = False
        if live is not None and live.held and _due(live, now_s):
            if ref.transaction_id is not None:
                live_a = live.attempt_a if live.attempt_a is not None else 0.0
            else:
                clear_live = True
        wanted_a = wanted_of_held.get(key)
        if wanted_a is not None and ref.transaction_id is not None:
            # Asking for less is always safe, and it is what the zone may need now
            # (the building rose, others arrived): at once, not at the next retry.
            asked_a = live_a if live_a is not None else _asked_a(live, profiles_, now_s)
            if wanted_a < asked_a:
                live_a = wanted_a
        held.append(HeldConnector(key, fallback_a, live_a, clear_live))
    changes = plan_changes(
        context.snapshot.zones,
        allocation,
        live_due=due,
        idle=idle,
        session_fallbacks={
            key: (
                context.profiles[key].fallback.confirmed_a,
                context.offline_a[key],
                _live_in_force_a(context.profiles[key], ref.transaction_id, now_s),
            )
            for key, ref in context.refs.items()
        },
        held=held,
        deadband_a=context.snapshot.settings.deadband_a,
        floor_of=floor_of,
    )
    by_key = {item.key: item for item in allocation.sessions}
    deliveries = []
    for change in changes:
        if change.kind == "clear_live":
            ref = context.held[change.key]
            action, payload = commands.clear_charging_profile(
                connector_id=ref.connector_id, purpose=ChargingProfilePurposeType.tx_profile
            )
            deliveries.append(
                Delivery(
                    ref=ref,
                    kind="clear_live",
                    action=action,
                    payload=payload,
                    priority=change.priority,
                )
            )
            continue
        if change.kind == "fallback":
            delivery = _fallback_delivery(
                context, context.installed_connectors[change.key], change.value_a, now_s
            )
            deliveries.append(replace(delivery, priority=change.priority, floor_a=change.floor_a))
            continue
        item = by_key.get(change.key)
        ref = context.refs.get(change.key) or context.held[change.key]
        live = _live_delivery(
            context,
            ref,
            setpoint_a=change.value_a,
            setpoint_w=(
                item.setpoint_w
                if item is not None and not change.held
                else _dc_power_w(ref, context, change.value_a)
            ),
            reason=Reason.HELD.value if change.held else by_key[change.key].reason.value,
            idle_since_s=None if item is None else item.idle_since_s,
            last=sent.get(change.key) or {},
            now_s=now_s,
            priority=change.priority,
            floor_a=change.floor_a,
        )
        deliveries.append(replace(live, held=change.held))
    return deliveries


def _wanted_of_held(context: SnapshotContext) -> dict[str, float]:
    """What each held session would get if its station followed evce.

    An allocation of the same site with those sessions in it instead of their
    reserves; nothing of it is sent or stored but what is asked of them.
    """
    if not context.held_sessions:
        return {}
    snapshot = context.snapshot
    keys = set(context.held_sessions)
    shadow = allocate(
        replace(
            snapshot,
            sessions=(*snapshot.sessions, *context.held_sessions.values()),
            reserves=tuple(r for r in snapshot.reserves if r.key not in keys),
        )
    )
    return {item.key: item.setpoint_a for item in shadow.sessions if item.key in keys}


def _live_in_force_a(
    profiles_: ConnectorProfiles, transaction_id: int | None, now_s: float
) -> float | None:
    """The lowest live setpoint a session's station may hold now (``None``: no live profile)."""
    live = profiles_.live_for(transaction_id, now_s)
    return None if live is None else live.lowest_at(now_s)


def _asked_a(live: Slot | None, profiles_: ConnectorProfiles, now_s: float) -> float:
    """The least a held session was asked for last: its live attempt, else its envelope."""
    if live is not None and live.attempt_a is not None:
        return live.attempt_a
    return profiles_.envelope_a(now_s, None) if live is None else live.at(now_s)


def _due(slot: Slot, now_s: float) -> bool:
    return slot.attempt_at_s is None or now_s - slot.attempt_at_s >= RETRY_S


def with_value(delivery: Delivery, value_a: float) -> Delivery | None:
    """``delivery`` for a lower value (a partial raise); DC profiles are sent whole."""
    if delivery.ref.current_type != "AC" or delivery.kind not in ("live", "fallback"):
        return None
    if delivery.kind == "fallback":
        payload = profiles.fallback_profile(
            delivery.ref.connector_id, current_a=value_a, power_w=None
        )
        return replace(delivery, payload=payload, value_a=value_a)
    entry = {**delivery.sent_entry, "setpoint_a": value_a}
    payload = profiles.live_profile(
        delivery.ref.connector_id,
        transaction_id=delivery.ref.transaction_id,
        current_a=value_a,
        power_w=None,
        now_s=entry["at_s"],
        valid_until_s=entry["valid_until_s"],
    )
    return replace(delivery, payload=payload, value_a=value_a, sent_entry=entry)


def _dc_power_w(ref: ConnectorRef, context: SnapshotContext, current_a: float) -> float | None:
    if ref.current_type != "DC":
        return None
    connector = context.connectors[ref.key]
    phase_count = len(connector.wiring.building_phases)
    voltage_v = context.snapshot.settings.nominal_voltage_v
    return float(math.floor(current_to_power_w(current_a, phase_count, voltage_v)))


def _fallback_delivery(
    context: SnapshotContext, ref: ConnectorRef, current_a: float, now_s: float
) -> Delivery:
    offline_a = context.offline_a[ref.key]
    power_w = (
        context.offline_w.get(ref.key)
        if current_a == offline_a
        else _dc_power_w(ref, context, current_a)
    )
    connector = context.connectors[ref.key]
    return Delivery(
        ref=ref,
        kind="fallback",
        value_a=current_a,
        payload=profiles.fallback_profile(ref.connector_id, current_a=current_a, power_w=power_w),
        priority=10**6,
        floor_a=context.snapshot.settings.floor_a(len(connector.wiring.building_phases)),
        sent_at_s=now_s,
    )


def _live_delivery(
    context: SnapshotContext,
    ref: ConnectorRef,
    *,
    setpoint_a: float,
    setpoint_w: float | None,
    reason: str,
    idle_since_s: float | None,
    last: dict,
    now_s: float,
    priority: int,
    floor_a: float,
) -> Delivery:
    valid_until_s = now_s + lease_s()
    same_tx = last.get("transaction_id") == ref.transaction_id
    before_a = float(last.get("setpoint_a") or 0) if same_tx else context.offline_a[ref.key]
    return Delivery(
        ref=ref,
        kind="live",
        value_a=setpoint_a,
        raises=ref.current_type == "AC" and setpoint_a > before_a,
        previous_entry=last or None,
        valid_until_s=valid_until_s,
        priority=priority,
        floor_a=floor_a,
        payload=profiles.live_profile(
            ref.connector_id,
            transaction_id=ref.transaction_id,
            current_a=setpoint_a,
            power_w=setpoint_w,
            now_s=now_s,
            valid_until_s=valid_until_s,
        ),
        sent_entry={
            "transaction_id": ref.transaction_id,
            "setpoint_a": setpoint_a,
            "setpoint_w": setpoint_w,
            "reason": reason,
            "at_s": now_s,
            "valid_until_s": valid_until_s,
            "idle_since_s": idle_since_s,
        },
    )
