"""Typed reads of meters' hot state, for the control loop, the admin, the UI and the API."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from apps.meters import state
from apps.meters.models import Meter, MeterRecord
from apps.meters.state import MeterStatus

PhaseCurrents = tuple[float, float, float]


def _datetime(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dataclass(frozen=True, slots=True)
class MeterState:
    """What the poller knows of a meter: its last good values and how it fares now.

    ``read_at`` / ``read_done_at`` frame when the last good values were read;
    ``usable_until`` is the end of their loss horizon, written with them
    (:func:`apps.meters.services.meter_loss_horizon_s`); ``failures`` counts
    consecutive failed polls, ``error`` is the last one's message.
    """

    meter_id: int
    status: str = MeterStatus.NOT_CONNECTED
    failures: int = 0
    values: Mapping[str, float | None] = field(default_factory=dict)
    read_at: datetime | None = None
    read_done_at: datetime | None = None
    usable_until: datetime | None = None
    failed_at: datetime | None = None
    error: str = ""

    @classmethod
    def from_hot(cls, meter_id: int, record: Mapping[str, Any] | None) -> MeterState:
        """The state stored by the poller (a never-read meter when there is none)."""
        if not record:
            return cls(meter_id=meter_id)
        return cls(
            meter_id=meter_id,
            status=record.get("status") or MeterStatus.NOT_CONNECTED,
            failures=int(record.get("failures") or 0),
            values=dict(record.get("values") or {}),
            read_at=_datetime(record.get("read_at")),
            read_done_at=_datetime(record.get("read_done_at")),
            usable_until=_datetime(record.get("usable_until")),
            failed_at=_datetime(record.get("failed_at")),
            error=record.get("error") or "",
        )

    def is_usable(self, now: datetime) -> bool:
        """Whether the control loop may count on the last good values at ``now`` (SPEC §4).

        The one rule: a meter stays usable through a few failed polls, until
        it is lost after N of them, and its values never outlive their loss
        horizon (``usable_until``, inclusive): older values belong to a meter
        that should have been declared lost (a poller that stopped or fell
        behind), so they fail closed. A meter never read is not usable.
        """
        if self.status not in (MeterStatus.CONNECTED, MeterStatus.ERROR):
            return False
        return self.usable_until is not None and now <= self.usable_until

    @property
    def currents_a(self) -> PhaseCurrents | None:
        """The last good per-phase currents (L1, L2, L3), if the meter reads all three."""
        currents = [self.values.get(f"current_l{n}_a") for n in (1, 2, 3)]
        if any(c is None for c in currents):
            return None
        return (float(currents[0]), float(currents[1]), float(currents[2]))

    def usable_currents_a(self, now: datetime) -> PhaseCurrents | None:
        """The currents the control loop may use at ``now``; None fails closed (never 0 A)."""
        return self.currents_a if self.is_usable(now) else None

    def age_s(self, now: datetime) -> float | None:
        """How old the last good values are at ``now`` (None: never read)."""
        return None if self.read_at is None else (now - self.read_at).total_seconds()


def meter_state(meter_id: int) -> MeterState:
    return MeterState.from_hot(meter_id, state.meter_hot_state(meter_id))


def meter_states(meter_ids: list[int]) -> dict[int, MeterState]:
    """The state of each meter in ``meter_ids`` (never-read ones included), one round trip."""
    records = state.meters_hot_state(meter_ids)
    return {i: MeterState.from_hot(i, records.get(i)) for i in meter_ids}


def meters_listed() -> QuerySet[Meter]:
    """Meters by name with their model and the zone each measures (one query)."""
    return Meter.objects.select_related("model", "measured_zone", "produced_zone").order_by(
        "name", "pk"
    )


def meter_by_id(meter_id: int) -> Meter | None:
    return meters_listed().filter(pk=meter_id).first()


def meter_records(
    meter: Meter, *, since: datetime | None = None, until: datetime | None = None
) -> QuerySet[MeterRecord]:
    """A meter's stored readings (downsampled history), on the index (meter, at)."""
    records = MeterRecord.objects.filter(meter=meter)
    if since is not None:
        records = records.filter(at__gte=since)
    if until is not None:
        records = records.filter(at__lt=until)
    return records


@dataclass(frozen=True, slots=True)
class MeterPoint:
    """One stored reading of a meter's phase currents (None: that phase was not read)."""

    at: datetime
    current_a: tuple[float | None, float | None, float | None]


def meter_history(meter_id: int, *, since: datetime, limit: int = 10_000) -> list[MeterPoint]:
    """The meter's stored readings since ``since``, oldest first (for the zone charts)."""
    rows = (
        MeterRecord.objects.filter(meter_id=meter_id, at__gte=since)
        .order_by("at")
        .values_list("at", "current_l1_a", "current_l2_a", "current_l3_a")[:limit]
    )
    return [MeterPoint(at=at, current_a=(l1, l2, l3)) for at, l1, l2, l3 in rows]
