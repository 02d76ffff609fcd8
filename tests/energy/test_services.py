"""Re-allocation requests coalesce and runs are single-flight."""

from __future__ import annotations

import threading

import pytest

from apps.energy import services, state
from apps.zones.models import Zone


def _queued_tasks(client) -> int:
    return sum(1 for raw in client.lrange("celery", 0, -1) if "rebalance_site_task" in raw)


@pytest.mark.django_db
def test_a_burst_of_requests_queues_one_task(hot_state):
    hot_state.delete("celery")
    for _ in range(500):
        services.rebalance_request(reason="meter")
    assert _queued_tasks(hot_state) == 1
    assert hot_state.smembers(services.DIRTY) == {"meter"}


@pytest.mark.django_db(transaction=True)
def test_runs_are_single_flight_and_pick_up_late_requests(hot_state, monkeypatch):
    Zone.objects.create(name="Main", max_current_a=100)
    hot_state.delete("celery", services.DIRTY, services.QUEUED)  # the zone's own change request
    calls: list[bool] = []
    inside = threading.Event()
    release = threading.Event()
    from apps.energy import control

    original = control.rebalance_once

    def slow_once(**kwargs):
        calls.append(kwargs["capacity_changed"])
        if len(calls) == 1:
            inside.set()
            release.wait(5)
        return original(**kwargs)

    monkeypatch.setattr(control, "rebalance_once", slow_once)
    services.rebalance_request(reason="tick")
    first = threading.Thread(target=services.rebalance_run)
    first.start()
    assert inside.wait(5)
    # While the first run works, requests arrive and a second worker tries to run.
    services.rebalance_request(reason="config")
    assert services.rebalance_run() == 0  # the lock is held: it leaves the work to the holder
    release.set()
    first.join(5)
    assert calls == [False, True]  # the holder ran again for the late request (a capacity change)
    assert not hot_state.exists(services.DIRTY)
    assert state.zone_results()[Zone.objects.get().pk]["available_a"] == [100.0, 100.0, 100.0]


@pytest.mark.django_db
def test_local_only_without_a_production_meter_above_gives_a_zone_nothing(hot_state):
    """A site left in "local only" with a zone that has no production source (it got
    there before the settings refused it) charges nothing there, not from the grid."""
    from apps.energy.control import rebalance_once
    from apps.meters.models import Meter, MeterModel
    from apps.siteconfig.models import ProductionMode, SiteSettings

    solar = Meter.objects.create(name="pv", model=MeterModel.objects.get(name="pm5320"), host="x")
    roof = Zone.objects.create(name="Roof", max_current_a=100, production_meter=solar)
    covered = Zone.objects.create(name="Covered", max_current_a=63, parent=roof)
    basement = Zone.objects.create(name="Basement", max_current_a=63)
    SiteSettings.load()
    SiteSettings.objects.update(production_mode=ProductionMode.LOCAL)

    allocation = rebalance_once().allocation
    assert allocation.zone(basement.pk).available_a == (0.0, 0.0, 0.0)
    # Below a production meter the sub-zone is bounded by the production (none read yet).
    assert allocation.zone(covered.pk).available_a == (63.0, 63.0, 63.0)
    assert allocation.zone(roof.pk).available_a == (0.0, 0.0, 0.0)
