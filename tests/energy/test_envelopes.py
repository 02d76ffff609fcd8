"""Every connector budgeted at what it may really draw: the real snapshot, allocator and planner.

Each test sets up stations in the database and what their stations are known
to hold (the control loop's records in Redis), then checks what the load
manager makes of it. Each case is one that overloaded a zone before
connectors were budgeted at their envelope.
"""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync

from apps.central_system import hotstate as cs_hotstate
from apps.energy import control, delivery, planning, state
from apps.energy.allocator import Reason, allocate
from apps.energy.allocator.envelope import ConnectorProfiles, Slot
from apps.energy.allocator.transition import Raise, admit_raises
from apps.energy.services import _fence
from apps.energy.snapshot import build_snapshot
from apps.stations.models import Connector
from evce_site.hotstate import redis_client
from tests.stations.factories import (
    ConnectorFactory,
    DcConnectorFactory,
    StationFactory,
    TransactionFactory,
)
from tests.zones.factories import ZoneFactory

pytestmark = pytest.mark.django_db

LONG_AGO_S = 600.0


def _station(zone, *, connected: bool = True, dc: bool = False, status: str = "Charging"):
    station = StationFactory(zone=zone)
    if dc:
        DcConnectorFactory(station=station, connector_id=1, max_power_w=22080, status=status)
    else:
        ConnectorFactory(
            station=station, connector_id=1, max_current_a=Decimal("32"), status=status
        )
    if connected:
        async_to_sync(cs_hotstate.connection_open)(
            station.identity, f"specific.test!{station.identity}", remote_addr=None
        )
    return station


def _holds(station, *, fallback: Slot, live: Slot | None = None, tx=None, valid_until_s=None):
    """What ``station``'s connector 1 is known to hold."""
    state.save_profiles(
        {
            f"{station.identity}/1": ConnectorProfiles(
                fallback=fallback,
                live=live,
                live_transaction_id=None if tx is None else tx.pk,
                live_valid_until_s=valid_until_s,
            )
        },
        since_s=time.time(),
    )


def _accepted(value_a: float) -> Slot:
    return Slot().accepted(value_a, at_s=time.time() - LONG_AGO_S, response_s=5)


def _sent(station, tx, setpoint_a: float) -> None:
    at_s = time.time() - LONG_AGO_S
    entry = {
        "transaction_id": tx.pk,
        "setpoint_a": setpoint_a,
        "setpoint_w": None,
        "reason": "connector_max",
        "at_s": at_s,
        "valid_until_s": time.time() + 3600,
        "idle_since_s": None,
    }
    state.record_sent(
        {
            f"{station.identity}/1": state.with_history(
                entry, None, sent_at_s=at_s, accepted_at_s=at_s
            )
        }
    )


def test_a_refused_decrease_keeps_the_connector_counted_at_what_it_still_draws(hot_state):
    """A alone at 32 A; B arrives; A's station refuses the decrease: B gets nothing."""
    zone = ZoneFactory(max_current_a=Decimal("32"))
    a, b = _station(zone), _station(zone)
    tx_a = TransactionFactory(station=a, connector_id=1)
    TransactionFactory(station=b, connector_id=1)
    _sent(a, tx_a, 32)
    _holds(
        a,
        fallback=_accepted(0),
        live=_accepted(32).sending(16, at_s=time.time() - 60).refused(16),
        tx=tx_a,
        valid_until_s=time.time() + 3600,
    )
    _holds(b, fallback=_accepted(0))

    context = build_snapshot()
    allocation = allocate(context.snapshot)

    assert f"{a.identity}/1" in context.held
    assert [r.current_a for r in context.snapshot.reserves] == [(32.0, 32.0, 32.0)]
    b_item = allocation.session(f"{b.identity}/1")
    assert b_item.setpoint_a == 0 and b_item.reason is Reason.NO_CAPACITY
    # A is asked again for what evce wanted of it.
    deliveries = planning.plan_deliveries(context, allocation)
    retry = [d for d in deliveries if d.ref.key == f"{a.identity}/1" and d.kind == "live"]
    assert [d.value_a for d in retry] == [16.0]


def test_an_idle_connectors_fallback_is_lowered_before_a_session_is_raised(hot_state):
    """S1 charges alone in 32 A; S2, idle, holds a 16 A fallback a car could draw at once."""
    zone = ZoneFactory(max_current_a=Decimal("32"))
    s1, s2 = _station(zone), _station(zone, status="Available")
    tx = TransactionFactory(station=s1, connector_id=1)
    _sent(s1, tx, 16)
    _holds(s1, fallback=_accepted(16), live=_accepted(16), tx=tx, valid_until_s=time.time() + 3600)
    _holds(s2, fallback=_accepted(16))

    context = build_snapshot()
    allocation = allocate(context.snapshot)
    assert allocation.session(f"{s1.identity}/1").setpoint_a == 32
    deliveries = {(d.ref.key, d.kind): d for d in planning.plan_deliveries(context, allocation)}
    lower = deliveries[(f"{s2.identity}/1", "fallback")]
    assert lower.value_a == 0
    raise_ = deliveries[(f"{s1.identity}/1", "live")]

    # Until S2's station confirms, and its EV had time to follow, S1 may not take it.
    run = delivery.Run(context, allocation, fence=None)
    budget = run._budgeted(time.time())
    wanted = [Raise(raise_.ref.key, raise_.value_a, raise_.floor_a, settled_a=16.0)]
    available = {z.zone_id: z.available_a for z in allocation.zones}
    assert admit_raises(context.snapshot.zones, available, budget, wanted) == {}
    now_s = time.time()
    run.profiles[lower.ref.key] = replace_fallback(
        run.profiles[lower.ref.key], lambda slot: slot.accepted(0, at_s=now_s, response_s=5)
    )
    budget = run._budgeted(now_s + 1)
    assert admit_raises(context.snapshot.zones, available, budget, wanted) == {}
    budget = run._budgeted(now_s + 5.1)
    granted = admit_raises(context.snapshot.zones, available, budget, wanted)
    assert granted == {(raise_.ref.key, "live"): 32.0}


def replace_fallback(profiles: ConnectorProfiles, change) -> ConnectorProfiles:
    from dataclasses import replace

    return replace(profiles, fallback=change(profiles.fallback))


def test_a_disconnected_station_is_reserved_at_the_fallback_it_holds(hot_state):
    """Two stations shared 32 A (16 A fallbacks); a third joins while one is away."""
    zone = ZoneFactory(max_current_a=Decimal("32"))
    away = _station(zone, connected=False)
    _holds(away, fallback=_accepted(16))
    _station(zone)
    _station(zone)

    context = build_snapshot()

    assert context.offline_a[f"{away.identity}/1"] == pytest.approx(10.6)
    [reserve] = [r for r in context.snapshot.reserves if r.key == f"{away.identity}/1"]
    assert reserve.current_a == (16.0, 16.0, 16.0)


def test_a_disconnected_dc_station_counts_its_fallback_once_its_lease_is_over(hot_state):
    zone = ZoneFactory(max_current_a=Decimal("32"))
    dc = _station(zone, connected=False, dc=True)
    tx = TransactionFactory(station=dc, connector_id=1)
    lease_end_s = time.time() - 120  # long over, whatever the station's clock
    _holds(dc, fallback=_accepted(16), live=_accepted(10), tx=tx, valid_until_s=lease_end_s)

    context = build_snapshot()

    [reserve] = context.snapshot.reserves
    assert reserve.current_a == (16.0, 16.0, 16.0)


def test_a_station_never_confirmed_counts_at_its_connector_maximum(hot_state):
    zone = ZoneFactory(max_current_a=Decimal("63"))
    unknown = _station(zone)
    TransactionFactory(station=unknown, connector_id=1)
    other = _station(zone)
    TransactionFactory(station=other, connector_id=1)
    _holds(other, fallback=_accepted(0))

    context = build_snapshot()
    allocation = allocate(context.snapshot)

    assert f"{unknown.identity}/1" in context.held
    assert allocation.session(f"{other.identity}/1").setpoint_a == 31.0  # 63 − 32


def test_only_the_transaction_a_connector_runs_is_driven(hot_state):
    zone = ZoneFactory(max_current_a=Decimal("32"))
    rebooted = _station(zone)
    TransactionFactory(station=rebooted, connector_id=1)  # its StopTransaction was lost
    newer = TransactionFactory(station=rebooted, connector_id=1)
    idle = _station(zone, status="Available")
    TransactionFactory(station=idle, connector_id=1)  # left open, yet the connector is free
    _holds(rebooted, fallback=_accepted(0))
    _holds(idle, fallback=_accepted(0))

    context = build_snapshot()

    assert context.refs[f"{rebooted.identity}/1"].transaction_id == newer.pk
    assert f"{idle.identity}/1" not in context.refs
    assert f"{idle.identity}/1" in context.idle


def test_a_run_that_lost_the_control_loop_delivers_nothing(hot_state):
    zone = ZoneFactory(max_current_a=Decimal("32"))
    station = _station(zone)
    TransactionFactory(station=station, connector_id=1)
    _holds(station, fallback=_accepted(0))

    outcome = control.rebalance_once(fence=lambda: False)

    assert outcome.fenced and outcome.sent == 0
    assert state.last_sent_setpoints() == {}


def test_a_newer_run_fences_off_an_older_one(hot_state):
    client = redis_client()
    lock = client.lock("evce:test:lock", timeout=60)
    assert lock.acquire(blocking=False)
    generation = client.incr("evce:energy:generation")
    fence = _fence(client, lock, generation)
    assert fence()
    client.incr("evce:energy:generation")  # a newer run took over after the lock expired
    assert not fence()


def test_connectors_of_a_station_are_known_as_soon_as_it_connects(hot_state):
    zone = ZoneFactory(max_current_a=Decimal("32"))
    station = _station(zone)
    _holds(station, fallback=_accepted(16))
    state.forget_station(
        station.identity,
        list(Connector.objects.filter(station=station).values_list("connector_id", flat=True)),
    )

    context = build_snapshot()

    key = f"{station.identity}/1"
    assert key in context.held  # counted at 32 A until it confirms a profile again
    assert context.profiles[key].fallback.attempt_a == 16.0  # and asked for it again
