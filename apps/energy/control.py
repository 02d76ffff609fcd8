"""One run of the control loop: snapshot → allocator → plan → deliver → journal.

The snapshot is what the run goes by; the allocator decides every setpoint;
``planning`` turns the allocation into the profiles that must change;
``delivery`` sends them safely (break before make) and records every outcome;
``journal`` keeps the results, the zones' holds and the device log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from apps.energy import state
from apps.energy.allocator import Allocation, allocate
from apps.energy.delivery import Run, RunFenced, ask_for_samples_after_ramp, look_again_after_holds
from apps.energy.journal import log_changes, store_results, update_transactions
from apps.energy.planning import plan_deliveries
from apps.energy.signals import allocation_stored
from apps.energy.snapshot import build_snapshot
from apps.meters.services import meters_allocation_basis_set

logger = logging.getLogger(__name__)


@dataclass
class RebalanceOutcome:
    sessions: int
    sent: int
    accepted: int
    failed: int
    allocation: Allocation
    deferred: int = 0
    fenced: bool = False


def rebalance_once(
    *,
    now: datetime | None = None,
    capacity_changed: bool = False,
    fence: Callable[[], bool] | None = None,
) -> RebalanceOutcome:
    """Allocate every connector and deliver, safely, the profiles that must change.

    ``fence`` is asked before each wave of profiles; once it answers false the
    run delivers nothing more (another run holds the control loop now).
    """
    now = now or timezone.now()
    started = time.perf_counter()
    context = build_snapshot(now=now, capacity_changed=capacity_changed)
    # What this run goes by, recorded before it delivers: a reading taken while
    # its profiles are on their way is the same situation, not a new one (a
    # run then would count EVs at setpoints they have not followed yet).
    meters_allocation_basis_set(context.meter_readings)
    snapshot_done = time.perf_counter()
    allocation = allocate(context.snapshot)
    allocated = time.perf_counter()
    previous_sessions = state.session_results()
    deliveries = plan_deliveries(context, allocation)
    run = Run(context, allocation, fence)
    try:
        run.deliver(deliveries)
    except RunFenced:
        logger.warning("Re-allocation superseded by a newer run: delivery stopped.")
    delivered = time.perf_counter()
    run.save()
    if run.delivered:
        logger.info(
            "Re-allocation: %d sessions, %d profiles sent (%d accepted, %d waiting); "
            "snapshot %.0f ms, allocation %.0f ms, delivery %.0f ms",
            len(allocation.sessions),
            len(run.delivered),
            run.accepted,
            len(run.deferred),
            1000 * (snapshot_done - started),
            1000 * (allocated - snapshot_done),
            1000 * (delivered - allocated),
        )
    ask_for_samples_after_ramp(run.delivered, run.results)
    store_results(context, allocation, run.status_by_key(), run.in_force_by_key())
    look_again_after_holds(context)
    log_changes(context, allocation, previous_sessions, context.previous_zones)
    update_transactions(context, allocation)
    state.run_record(time.perf_counter() - started)
    allocation_stored.send(sender=RebalanceOutcome)
    return RebalanceOutcome(
        sessions=len(allocation.sessions),
        sent=len(run.delivered),
        accepted=run.accepted,
        failed=len(run.delivered) - run.accepted,
        allocation=allocation,
        deferred=len(run.deferred),
        fenced=run.fenced,
    )
