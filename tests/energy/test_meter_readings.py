"""How much of a zone meter's reading the EVs account for: the real snapshot, allocator and planner.

Samples lag meters; what a sample may count for depends on the limits the
station may have been on while the meter was read. Each case here is one the
closed loop of ``test_meter_loop`` found (or a utilisation it lost).
"""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from django.utils import timezone

from apps.energy import delivery, journal, planning, state
from apps.energy.allocator import allocate
from apps.energy.allocator.envelope import ConnectorProfiles, Slot
from apps.energy.snapshot import build_snapshot
from apps.meters.services import meters_poll
from apps.stations.models import MeterSample
from tests.energy.helpers import confirm_fallbacks
from tests.energy.test_envelopes import _station
from tests.energy.test_meter_states import (
    _charging,
    _sample,
    _sent,
    _setpoints,
    _tx,
    _zone,
    two_evs_on_18_a,
)
from tests.stations.factories import TransactionFactory
from tests.zones.factories import ZoneFactory

pytestmark = pytest.mark.django_db


def _live(key: str, tx_pk: int, live: Slot) -> None:
    """What the station of ``key`` is known to hold: a 0 A fallback and ``live``."""
    now_s = time.time()
    state.save_profiles(
        {
            key: ConnectorProfiles(
                fallback=Slot().accepted(0.0, at_s=now_s - 600, response_s=5),
                live=live,
                live_transaction_id=tx_pk,
                live_valid_until_s=now_s + 3600,
            )
        },
        since_s=now_s,
    )


def test_sessions_lowered_together_are_not_shed_while_their_evs_follow(meter_simulator, hot_state):
    """100 A zone; the building went from 20 A to 60 A; four EVs lowered from 16 A to 10 A.

    A second after the decrease the EVs still draw 16 A and their samples say
    so. Counted at 10 A, each EV's other 6 A looked like building load: 84 A
    of it, 16 A left for four sessions, and they were shed until the EVs had
    come down. Their envelope still counts them at 16 A, so their samples
    count up to that, and none of them is raised meanwhile.
    """
    zone = _zone(meter_simulator, max_current_a=100, degraded_current_a=20)
    now = timezone.now()
    now_s = now.timestamp()
    keys = [_charging(zone, sample_a=16, sampled_at=now - timedelta(seconds=3)) for _ in range(4)]
    for key in keys:
        tx = _tx(key)
        _sent(key, tx.pk, (16.0, now_s - 600), (10.0, now_s - 1))
        live = Slot().accepted(16.0, at_s=now_s - 600, response_s=5)
        _live(key, tx.pk, live.accepted(10.0, at_s=now_s - 1, response_s=5))
    meter_simulator.set_values(1, current_a=(124.0, 124.0, 124.0))
    meters_poll(now=now)

    context = build_snapshot(now=now)
    allocation = allocate(context.snapshot)

    assert allocation.zone(zone.pk).other_loads_a == (60.0, 60.0, 60.0)
    assert _setpoints(allocation) == dict.fromkeys(keys, 10.0)
    assert all(s.connector.max_current_a == 10.0 for s in context.snapshot.sessions)


def test_a_session_not_yet_following_its_decrease_is_counted_at_its_lower_setpoint_once_settled(
    meter_simulator, hot_state
):
    """The same EVs six seconds after the decrease: their envelope is 10 A, so is their count."""
    zone = _zone(meter_simulator, max_current_a=100, degraded_current_a=20)
    now = timezone.now()
    now_s = now.timestamp()
    key = _charging(zone, sample_a=16, sampled_at=now - timedelta(seconds=8))
    tx = _tx(key)
    _sent(key, tx.pk, (16.0, now_s - 600), (10.0, now_s - 6))
    live = Slot().accepted(16.0, at_s=now_s - 600, response_s=5)
    _live(key, tx.pk, live.accepted(10.0, at_s=now_s - 6, response_s=5))
    meter_simulator.set_values(1, current_a=(76.0, 76.0, 76.0))  # building 60 A + 16 A
    meters_poll(now=now)

    allocation = allocate(build_snapshot(now=now).snapshot)

    assert allocation.zone(zone.pk).other_loads_a == (66.0, 66.0, 66.0)


def test_a_held_stations_stale_sample_does_not_hide_building_load(meter_simulator, hot_state):
    """40 A zone, building 10 A. A's station accepted 0 A, then did not answer 15 A.

    A's last sample (10 A) predates the 0 A its EV now follows: taken at face
    value it hid 10 A of building load, and B was raised into it.
    """
    zone = _zone(meter_simulator, max_current_a=40, degraded_current_a=10)
    now = timezone.now()
    now_s = now.timestamp()
    a = _charging(zone, sample_a=10, sampled_at=now - timedelta(seconds=4))
    b = _charging(zone, sample_a=0, sampled_at=now - timedelta(seconds=4))
    tx_a = _tx(a)
    live = Slot().accepted(10.0, at_s=now_s - 60, response_s=5)
    live = live.accepted(0.0, at_s=now_s - 10, response_s=5)
    _live(a, tx_a.pk, live.sending(15.0, at_s=now_s - 2).unanswered(15.0))
    meter_simulator.set_values(1, current_a=(10.0, 10.0, 10.0))
    meters_poll(now=now)

    context = build_snapshot(now=now)
    allocation = allocate(context.snapshot)

    assert a in context.held
    assert allocation.zone(zone.pk).other_loads_a == (10.0, 10.0, 10.0)
    assert 10.0 + 15.0 + allocation.session(b).setpoint_a <= 40.0


def test_a_held_session_is_asked_at_once_for_less_when_it_would_get_less(hot_state):
    """32 A zone; A's station has not answered 24 A yet; B and C arrive.

    A is reserved at what it may draw, and asked again only every ten
    seconds; but asking it for less is safe, and what the zone needs: it is
    asked at once for its share.
    """
    zone = ZoneFactory(max_current_a=Decimal("32"))
    a, b, c = _station(zone), _station(zone), _station(zone)
    tx_a = TransactionFactory(station=a, connector_id=1)
    for station in (b, c):
        TransactionFactory(station=station, connector_id=1)
    now_s = time.time()
    key_a = f"{a.identity}/1"
    live = Slot().accepted(32.0, at_s=now_s - 600, response_s=5)
    _live(key_a, tx_a.pk, live.sending(24.0, at_s=now_s - 1).unanswered(24.0))
    confirm_fallbacks([f"{b.identity}/1", f"{c.identity}/1"])

    context = build_snapshot()
    allocation = allocate(context.snapshot)
    deliveries = planning.plan_deliveries(context, allocation)

    assert key_a in context.held
    asked = [d.value_a for d in deliveries if d.ref.key == key_a and d.kind == "live"]
    assert asked == [10.6]  # 32 A shared by three


def test_a_dip_hold_ends_only_on_samples_taken_after_it_began(meter_simulator, hot_state):
    """A sample stored after a hold began may have been on its way before the dip.

    40 A zone, building 4 A, two EVs on 18 A; the meter falls by 4 A. A
    sample stored then but taken before the fall does not end the hold; once
    the stations answered the request for a sample, a newer one does.
    """
    zone, now, keys = two_evs_on_18_a(meter_simulator)
    _run(now)

    dip_at = now + timedelta(seconds=1)
    meter_simulator.set_values(1, current_a=(36.0, 36.0, 36.0))
    meters_poll(now=dip_at)
    context, during = _run(dip_at)
    assert during.zone(zone.pk).other_loads_a == (4.0, 4.0, 4.0)
    assert [zone_id for zone_id, _ in context.holds_begun] == [zone.pk]

    # Samples in flight when the hold began (taken before the fall) arrive.
    later = now + timedelta(seconds=2)
    for key in keys:
        _sample(_tx(key), 18.0, now - timedelta(seconds=1))
    meters_poll(now=later)
    _context, still = _run(later)
    assert still.zone(zone.pk).other_loads_a == (4.0, 4.0, 4.0)

    # The stations answered the request for samples; the samples they send then show no dip.
    async_to_sync(delivery.ask_for_samples_after_dip)([], context.holds_begun)
    for key in keys:
        _sample(_tx(key), 18.0, later)
    meters_poll(now=later)
    _context, after = _run(later)
    assert after.zone(zone.pk).other_loads_a == (0.0, 0.0, 0.0)
    assert MeterSample.objects.count() == 6


def _run(now):
    context = build_snapshot(now=now)
    allocation = allocate(context.snapshot)
    journal.store_results(context, allocation, results_by_key={})
    return context, allocation


def test_a_dip_hold_that_ends_still_holds_a_fresh_fall(meter_simulator, hot_state):
    """The samples that end a hold show the fall it held, not one that came after them.

    40 A zone, two EVs on 18 A, the building at 10 A; the meter falls by 4 A
    and a hold begins. The samples asked for show both EVs on 18 A (the
    building fell to 6 A), but by the next reading an EV has dipped by 6 A:
    the meter reads 36 A. The hold ends, yet only its own fall is the
    building's; the one since the last run is held anew.
    """
    zone, now, keys = two_evs_on_18_a(meter_simulator)
    meter_simulator.set_values(1, current_a=(46.0, 46.0, 46.0))
    meters_poll(now=now)
    _run(now)
    dip_at = now + timedelta(seconds=1)
    meter_simulator.set_values(1, current_a=(42.0, 42.0, 42.0))
    meters_poll(now=dip_at)
    context, during = _run(dip_at)
    assert during.zone(zone.pk).other_loads_a == (10.0, 10.0, 10.0)

    later = now + timedelta(seconds=2)
    async_to_sync(delivery.ask_for_samples_after_dip)([], context.holds_begun)
    for key in keys:
        _sample(_tx(key), 18.0, later)
    meter_simulator.set_values(1, current_a=(36.0, 36.0, 36.0))
    meters_poll(now=later + timedelta(seconds=0.5))
    context, after = _run(later + timedelta(seconds=0.5))
    assert after.zone(zone.pk).other_loads_a == (6.0, 6.0, 6.0)
    assert [zone_id for zone_id, _ in context.holds_begun] == [zone.pk]  # samples asked again
