"""Reads of the zone tree and of the reductions active at a given time (SPEC §3.5)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal

from django.db.models import QuerySet
from django.utils import timezone

from apps.energy.allocator import ReductionSource
from apps.zones.models import DAYS, EbmsReduction, ExternalInput, TouPeriod, Zone


@dataclass(frozen=True)
class ActiveReduction:
    """A limit active on a zone right now, with what the UI and API show of it."""

    source: ReductionSource
    percent: float | None
    current_a: float | None
    description: str
    valid_until: datetime | None = None


def slot_active(start: time, end: time, days: list[str], local_now: datetime) -> bool:
    """Whether a daily slot of a period is running at ``local_now`` (site time).

    A slot crossing midnight belongs to the day it starts: "22:00-06:00" on
    Monday also covers Tuesday 03:00.
    """
    now_t = local_now.time()
    today = DAYS[local_now.weekday()]
    if start < end:
        return today in days and start <= now_t < end
    yesterday = DAYS[(local_now - timedelta(days=1)).weekday()]
    return (today in days and now_t >= start) or (yesterday in days and now_t < end)


def tou_periods_active(now: datetime) -> list[TouPeriod]:
    """Enabled TOU periods with a slot running at ``now`` (slots and zones prefetched)."""
    local_now = timezone.localtime(now)
    periods = TouPeriod.objects.filter(enabled=True).prefetch_related("slots", "zones")
    return [
        period
        for period in periods
        if any(slot_active(s.start, s.end, period.days, local_now) for s in period.slots.all())
    ]


def tou_period_name_at(now: datetime, periods: list[TouPeriod] | None = None) -> str | None:
    """The TOU period used for energy accounting at ``now`` (lowest % wins), or None."""
    active = tou_periods_active(now) if periods is None else periods
    if not active:
        return None
    return min(active, key=lambda p: (p.max_percent, p.name)).name


_period_by_minute: dict[datetime, str | None] = {}


def tou_period_name_at_minute(now: datetime) -> str | None:
    """``tou_period_name_at`` cached per minute: it runs for every MeterValues message.

    The cache is cleared whenever a period or slot changes (``tou_cache_clear``).
    """
    minute = now.replace(second=0, microsecond=0)
    if minute not in _period_by_minute:
        if len(_period_by_minute) > 256:
            _period_by_minute.clear()
        _period_by_minute[minute] = tou_period_name_at(minute)
    return _period_by_minute[minute]


def tou_cache_clear(**_kwargs) -> None:
    _period_by_minute.clear()


def active_reductions(now: datetime | None = None) -> dict[int, list[ActiveReduction]]:
    """Every reduction active at ``now``, by zone id.

    The allocator applies the rules between them (inputs override TOU, the
    lowest remaining wins); this only says which are in force.
    """
    now = now or timezone.now()
    zone_ids = list(Zone.objects.values_list("pk", flat=True))
    result: dict[int, list[ActiveReduction]] = defaultdict(list)
    for period in tou_periods_active(now):
        targets = [z.pk for z in period.zones.all()] or zone_ids
        for zone_id in targets:
            result[zone_id].append(
                ActiveReduction(
                    ReductionSource.TOU,
                    float(period.max_percent),
                    None,
                    f"TOU period {period.name}",
                )
            )
    for entry in ExternalInput.objects.filter(enabled=True, active=True):
        for zone_id in zone_ids:
            result[zone_id].append(
                ActiveReduction(
                    ReductionSource.INPUT,
                    float(entry.percent),
                    None,
                    f"External input {entry.number} ({entry.name})",
                )
            )
    reductions = EbmsReduction.objects.in_force(now)
    for reduction in reductions:
        result[reduction.zone_id].append(
            ActiveReduction(
                ReductionSource.EBMS,
                _float(reduction.percent),
                _float(reduction.current_a),
                reduction.description or "Building management system",
                reduction.valid_until,
            )
        )
    return dict(result)


def zone_by_id(zone_id: int) -> Zone | None:
    return Zone.objects.filter(pk=zone_id).first()


def zone_reduction_in_force(zone: Zone, now: datetime | None = None) -> EbmsReduction | None:
    """The EBMS reduction active on ``zone`` (the service keeps at most one)."""
    return (
        EbmsReduction.objects.filter(zone=zone)
        .in_force(now or timezone.now())
        .order_by("-created_at")
        .first()
    )


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def zones_without_production_meter() -> list[Zone]:
    """Zones holding stations with no production meter on themselves or an ancestor.

    Under the "local only" production mode such a zone has no production to
    charge from (SPEC §3.2): the allocator gives it 0 A, and the settings
    refuse the mode while one exists, so that green charging is never
    configured to silently stop (or, before, to charge from the grid).
    Ordered by name.
    """
    rows = {
        pk: (parent_id, production_meter_id)
        for pk, parent_id, production_meter_id in Zone.objects.values_list(
            "pk", "parent_id", "production_meter_id"
        )
    }

    def has_production(zone_id: int) -> bool:
        seen: set[int] = set()
        node: int | None = zone_id
        while node is not None and node not in seen and node in rows:
            seen.add(node)
            parent_id, production_meter_id = rows[node]
            if production_meter_id is not None:
                return True
            node = parent_id
        return False

    lacking = [pk for pk in rows if not has_production(pk)]
    return list(Zone.objects.filter(pk__in=lacking, stations__isnull=False).distinct())


def external_inputs_listed() -> QuerySet[ExternalInput]:
    return ExternalInput.objects.order_by("number")


def external_input_by_id(input_id: int) -> ExternalInput | None:
    return ExternalInput.objects.filter(pk=input_id).first()
