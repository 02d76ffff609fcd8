"""What a session's meter samples say about its EV, read on the safe side.

The allocator takes two things from a station's samples, and each one goes
wrong in its own direction when read carelessly:

- **the phases the EV uses** (``Session.ev_phases``): the EV's setpoint is
  budgeted only on those. Taking a three-phase EV for a single-phase one
  leaves two phases carrying its current unbudgeted. So the count is lowered
  below the wiring's only on plain per-phase evidence (:func:`ev_phases`);
  otherwise it is ``None``, every phase of the wiring.
- **the current to subtract from the zone meters**
  (``Session.measured_current_a``): counting current on a phase where the EV
  does not draw makes the building's own load look lighter than it is. A
  current given without a phase is counted on the wiring's first phase only,
  the one every EV draws on (a single-phase EV on the first listed, SPEC
  §2.3). A DC charger's ``Current.Import`` is its DC output, whatever the
  battery voltage: it is never taken for AC current; its AC input is derived
  from its power (:func:`dc_input_current_a`), or not counted at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import reduce
from operator import or_
from typing import Protocol

from django.db.models import OuterRef, Q, Subquery

from apps.energy.allocator import (
    Connector,
    CurrentType,
    PhaseAmps,
    PhaseWiring,
    connector_to_building_phases,
    power_to_current_a,
)
from apps.stations.models import MeterSample, Transaction

# A phase carries the EV's load from this current on...
PHASE_USED_A = 1.0
# ...and is taken as unused below this one. In between, the sample proves nothing.
PHASE_UNUSED_A = 0.5

_CURRENT_FIELDS = ("current_l1_a", "current_l2_a", "current_l3_a", "current_unknown_phase_a")
_HAS_CURRENT = reduce(or_, (Q(**{f"{name}__isnull": False}) for name in _CURRENT_FIELDS))


class Sample(Protocol):
    """The fields of a :class:`~apps.stations.models.MeterSample` read here."""

    current_l1_a: float | None
    current_l2_a: float | None
    current_l3_a: float | None
    current_unknown_phase_a: float | None
    power_w: float | None


@dataclass(frozen=True, slots=True)
class EvMeasurement:
    """A session's measured current per building phase and its EV's phase count."""

    measured_current_a: PhaseAmps | None
    ev_phases: int | None


def ev_measurement(
    connector: Connector, latest: Sample | None, previous: Sample | None, *, voltage_v: float
) -> EvMeasurement:
    """What the allocator may take from a session's ``latest`` sample (and the one before).

    ``previous`` is the sample with a current that came before ``latest``.
    """
    if latest is None:
        return EvMeasurement(None, None)
    if connector.current_type is CurrentType.DC:
        # A DC charger loads every phase of its supply whatever its EV: no count to detect.
        return EvMeasurement(dc_input_current_a(connector.wiring, latest.power_w, voltage_v), None)
    return EvMeasurement(
        ac_current_a(connector.wiring, latest), ev_phases(connector.wiring, latest, previous)
    )


def ac_current_a(wiring: PhaseWiring, sample: Sample) -> PhaseAmps | None:
    """An AC sample's current per building phase, to subtract from the zone meters.

    A phase missing from a per-phase sample counts 0 (its current stays in
    the building load). A current without a phase counts on the wiring's
    first phase only: counting it on the others too would take it off phases
    where a single-phase EV draws nothing.
    """
    per_phase = (sample.current_l1_a, sample.current_l2_a, sample.current_l3_a)
    if any(value is not None for value in per_phase):
        return connector_to_building_phases(wiring, [value or 0.0 for value in per_phase])
    if sample.current_unknown_phase_a is not None:
        return connector_to_building_phases(wiring, [sample.current_unknown_phase_a])
    return None


def dc_input_current_a(
    wiring: PhaseWiring, power_w: float | None, voltage_v: float
) -> PhaseAmps | None:
    """A DC charger's AC input per building phase: its power over every phase of its supply.

    The power a station reports is what it delivers, a little below what it
    takes from the grid, so this never counts more than the charger draws
    (cos φ = 1, as its setpoint). Without a power sample nothing is counted:
    the charger's current then stays in the building load.
    """
    if power_w is None:
        return None
    supply_phases = len(wiring.building_phases)
    per_phase_a = power_to_current_a(max(0.0, power_w), supply_phases, voltage_v)
    return connector_to_building_phases(wiring, [per_phase_a] * supply_phases)


def phases_shown(wiring: PhaseWiring, sample: Sample | None) -> int | None:
    """The phases a sample plainly shows the EV drawing on, else ``None``.

    Plain means: a value for every phase of the wiring, the EV drawing at
    least :data:`PHASE_USED_A` on its first phases (an EV always draws on the
    first ones) and less than :data:`PHASE_UNUSED_A` on the others.
    """
    if sample is None:
        return None
    count = len(wiring.building_phases)
    values = (sample.current_l1_a, sample.current_l2_a, sample.current_l3_a)[:count]
    used: list[bool] = []
    for value in values:
        if value is None or PHASE_UNUSED_A <= value < PHASE_USED_A:
            return None
        used.append(value >= PHASE_USED_A)
    drawing = sum(used)
    if not drawing or used != [True] * drawing + [False] * (count - drawing):
        return None
    return drawing


def ev_phases(wiring: PhaseWiring, latest: Sample | None, previous: Sample | None) -> int | None:
    """The EV's phase count when below the wiring's, on consistent evidence; else ``None``.

    ``None`` means every phase of the wiring. A lower count needs the last two
    samples to show it alike (:func:`phases_shown`): one sample may catch an
    EV switching phases, and a sample without per-phase values (or without a
    phase at all) shows nothing, so it can only raise the count back to all.
    """
    shown = phases_shown(wiring, latest)
    if shown is None or shown >= len(wiring.building_phases):
        return None
    if phases_shown(wiring, previous) != shown:
        return None
    return shown


def previous_current_samples(latest: Mapping[int, MeterSample]) -> dict[int, MeterSample]:
    """For each transaction id of ``latest``, its sample with a current before the latest one.

    ``latest`` maps transaction ids to their latest sample; transactions
    whose latest sample has no current are left out (nothing is detected
    from them). Two queries, whatever the number of transactions.
    """
    wanted = {
        tx_id: sample
        for tx_id, sample in latest.items()
        if any(getattr(sample, name) is not None for name in _CURRENT_FIELDS)
    }
    if not wanted:
        return {}
    with_current = (
        MeterSample.objects.filter(_HAS_CURRENT, transaction=OuterRef("pk"))
        .order_by("-sampled_at", "-pk")
        .values("pk")
    )
    rows = list(
        Transaction.objects.filter(pk__in=list(wanted))
        .annotate(previous_id=Subquery(with_current[1:2]))
        .values_list("pk", "previous_id")
    )
    samples = MeterSample.objects.only(*_CURRENT_FIELDS, "sampled_at").in_bulk(
        [previous_id for _, previous_id in rows if previous_id]
    )
    result = {}
    for tx_id, previous_id in rows:
        sample = samples.get(previous_id)
        newest = wanted[tx_id]
        # A sample stored since ``latest`` was read shifts the offset: keep only an older one.
        if sample is not None and (sample.sampled_at, sample.pk) < (newest.sampled_at, newest.pk):
            result[tx_id] = sample
    return result
