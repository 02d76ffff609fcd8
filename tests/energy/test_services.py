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
