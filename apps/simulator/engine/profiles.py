"""OCPP 1.6 smart charging as a charge point applies it.

Pure and clock-free: every query takes the instant it is about, so the same
code answers "what may this connector draw now" and GetCompositeSchedule.

Rules implemented (OCPP 1.6 §3.13 and the SetChargingProfile messages):

* Per purpose, the **prevailing** profile is the one with the highest stack
  level that is valid (``validFrom <= t < validTo``) and whose schedule runs
  at ``t`` (started, not past its ``duration``). When it stops running, the
  next stack level takes over — which is how a short-lived ``TxProfile``
  falls back to the station's ``TxDefaultProfile`` when the central system
  stops renewing it. At equal stack levels a connector-specific
  ``TxDefaultProfile`` beats one installed on connector 0.
* A ``TxProfile`` (only on a connector with a transaction) overrules the
  ``TxDefaultProfile``; the ``ChargePointMaxProfile`` (connector 0) caps the
  whole station and is shared equally by the connectors in a transaction.
* The offer of a connector is the minimum of its own maximum, its share of
  the ``ChargePointMaxProfile`` limit and its TxProfile/TxDefaultProfile
  limit. Power limits (W) become currents with 230 V per phase and the
  number of phases actually in use.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ocpp.v16.enums import (
    ChargingProfileKindType,
    ChargingProfilePurposeType,
    ChargingRateUnitType,
    RecurrencyKind,
)

from apps.simulator.engine.clock import parse_ocpp_time

DEFAULT_VOLTAGE_V = 230.0
DEFAULT_NUMBER_PHASES = 3
"""OCPP 1.6: a schedule period without ``numberPhases`` means three phases."""

_RECURRENCE_S = {RecurrencyKind.daily: 86_400, RecurrencyKind.weekly: 604_800}


class ProfileError(ValueError):
    """A charging profile that a charge point must reject."""


@dataclass(frozen=True, slots=True)
class SchedulePeriod:
    """From ``start_period_s`` after the schedule start, ``limit`` (A or W) applies."""

    start_period_s: int
    limit: float
    number_phases: int | None = None


@dataclass(frozen=True, slots=True)
class ChargingProfile:
    """An installed charging profile, with its schedule."""

    profile_id: int
    stack_level: int
    purpose: ChargingProfilePurposeType
    kind: ChargingProfileKindType
    rate_unit: ChargingRateUnitType
    periods: tuple[SchedulePeriod, ...]
    connector_id: int = 0
    transaction_id: int | None = None
    recurrency: RecurrencyKind | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    start_schedule: datetime | None = None
    duration_s: int | None = None

    def __post_init__(self) -> None:
        if not self.periods:
            raise ProfileError("a charging schedule needs at least one period")
        if self.periods[0].start_period_s != 0:
            raise ProfileError("the first schedule period must start at 0")
        starts = [period.start_period_s for period in self.periods]
        if any(later <= earlier for earlier, later in itertools.pairwise(starts)):
            raise ProfileError("schedule periods must start in increasing order")
        for period in self.periods:
            if period.limit < 0 or not math.isfinite(period.limit):
                raise ProfileError("a schedule limit must be a non-negative number")
            if period.number_phases is not None and period.number_phases not in (1, 2, 3):
                raise ProfileError("numberPhases must be 1, 2 or 3")
        if self.stack_level < 0:
            raise ProfileError("the stack level must not be negative")
        if self.duration_s is not None and self.duration_s <= 0:
            raise ProfileError("the schedule duration must be positive")
        if self.kind is ChargingProfileKindType.absolute and self.start_schedule is None:
            raise ProfileError("an absolute schedule needs a start")
        if self.kind is ChargingProfileKindType.recurring and (
            self.recurrency is None or self.start_schedule is None
        ):
            raise ProfileError("a recurring schedule needs a recurrency kind and a start")
        if self.valid_from and self.valid_to and self.valid_to <= self.valid_from:
            raise ProfileError("validTo must be after validFrom")


def profile_from_ocpp(
    connector_id: int, data: Mapping[str, Any], *, received_at: datetime
) -> ChargingProfile:
    """Build a profile from a SetChargingProfile ``csChargingProfiles`` (snake_case keys).

    An absolute schedule without ``startSchedule`` starts when received, as
    most central systems that omit it intend.
    """
    try:
        schedule = data["charging_schedule"]
        periods = tuple(
            SchedulePeriod(
                start_period_s=int(item["start_period"]),
                limit=float(item["limit"]),
                number_phases=(
                    int(item["number_phases"]) if item.get("number_phases") is not None else None
                ),
            )
            for item in schedule["charging_schedule_period"]
        )
        kind = ChargingProfileKindType(data["charging_profile_kind"])
        start_schedule = _optional_time(schedule.get("start_schedule"))
        if kind is ChargingProfileKindType.absolute and start_schedule is None:
            start_schedule = received_at
        recurrency = data.get("recurrency_kind")
        return ChargingProfile(
            profile_id=int(data["charging_profile_id"]),
            stack_level=int(data["stack_level"]),
            purpose=ChargingProfilePurposeType(data["charging_profile_purpose"]),
            kind=kind,
            rate_unit=ChargingRateUnitType(schedule["charging_rate_unit"]),
            periods=periods,
            connector_id=connector_id,
            transaction_id=(
                int(data["transaction_id"]) if data.get("transaction_id") is not None else None
            ),
            recurrency=RecurrencyKind(recurrency) if recurrency else None,
            valid_from=_optional_time(data.get("valid_from")),
            valid_to=_optional_time(data.get("valid_to")),
            start_schedule=start_schedule,
            duration_s=(
                int(schedule["duration"]) if schedule.get("duration") is not None else None
            ),
        )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ProfileError):
            raise
        raise ProfileError(f"malformed charging profile: {exc}") from exc


def _optional_time(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value
    return parse_ocpp_time(str(value))


def is_valid_at(profile: ChargingProfile, at: datetime) -> bool:
    """Whether ``at`` lies in the profile's validity window ``[validFrom, validTo)``."""
    if profile.valid_from is not None and at < profile.valid_from:
        return False
    return profile.valid_to is None or at < profile.valid_to


def schedule_start(profile: ChargingProfile, at: datetime, relative_start: datetime) -> datetime:
    """When the schedule cycle that covers ``at`` started.

    Relative schedules start at ``relative_start`` (the transaction start);
    recurring ones at the latest daily/weekly repetition of their start.
    """
    if profile.kind is ChargingProfileKindType.relative:
        return relative_start
    assert profile.start_schedule is not None  # checked when built
    if profile.kind is ChargingProfileKindType.absolute:
        return profile.start_schedule
    assert profile.recurrency is not None
    recurrence_s = _RECURRENCE_S[profile.recurrency]
    cycles = math.floor((at - profile.start_schedule).total_seconds() / recurrence_s)
    return profile.start_schedule + timedelta(seconds=cycles * recurrence_s)


def period_at(
    profile: ChargingProfile, at: datetime, relative_start: datetime
) -> SchedulePeriod | None:
    """The schedule period running at ``at``; None before the start or after the duration."""
    elapsed_s = (at - schedule_start(profile, at, relative_start)).total_seconds()
    if elapsed_s < 0:
        return None
    if profile.duration_s is not None and elapsed_s >= profile.duration_s:
        return None
    current = None
    for period in profile.periods:
        if period.start_period_s > elapsed_s:
            break
        current = period
    return current


def period_limit_a(
    profile: ChargingProfile,
    period: SchedulePeriod,
    phases_in_use: int,
    voltage_v: float = DEFAULT_VOLTAGE_V,
) -> float:
    """The period's limit as a current per phase (A).

    A power limit is shared by the phases actually in use, so a single-phase
    EV may take the whole power on its one phase.
    """
    if profile.rate_unit is ChargingRateUnitType.amps:
        return period.limit
    phases = max(1, min(period.number_phases or DEFAULT_NUMBER_PHASES, phases_in_use))
    return period.limit / (voltage_v * phases)


def prevailing(
    profiles: Iterable[ChargingProfile], at: datetime, relative_start: datetime
) -> tuple[ChargingProfile, SchedulePeriod] | None:
    """The highest-stack profile valid and running at ``at``, with its current period.

    At equal stack levels a connector-specific profile wins over one on
    connector 0.
    """
    best: tuple[ChargingProfile, SchedulePeriod] | None = None
    for profile in profiles:
        if not is_valid_at(profile, at):
            continue
        period = period_at(profile, at, relative_start)
        if period is None:
            continue
        if best is None or _rank(profile) > _rank(best[0]):
            best = (profile, period)
    return best


def _rank(profile: ChargingProfile) -> tuple[int, bool]:
    return profile.stack_level, profile.connector_id != 0


@dataclass(frozen=True, slots=True)
class ConnectorContext:
    """What the profile logic needs to know about a connector at an instant.

    ``transaction_start`` is set while a transaction runs (even before the
    central system has given its id, when it started offline).
    """

    connector_id: int
    max_current_a: float
    phases_in_use: int = 3
    transaction_start: datetime | None = None
    transaction_id: int | None = None

    @property
    def in_transaction(self) -> bool:
        return self.transaction_start is not None


@dataclass(frozen=True, slots=True)
class Limit:
    """A current limit per phase, and a restriction on the number of phases if any."""

    current_a: float
    number_phases: int | None = None


@dataclass(frozen=True, slots=True)
class Offer:
    """What a connector offers the EV: current per phase and allowed phases."""

    current_a: float
    number_phases: int | None = None


class ProfileStore:
    """The charging profiles installed on one charge point.

    Limits mirror what a station advertises in its configuration keys
    (``ChargeProfileMaxStackLevel``, ``ChargingScheduleMaxPeriods``,
    ``MaxChargingProfilesInstalled``).
    """

    def __init__(
        self,
        connector_count: int,
        *,
        max_stack_level: int = 10,
        max_periods: int = 24,
        max_profiles: int = 32,
        voltage_v: float = DEFAULT_VOLTAGE_V,
    ) -> None:
        self.connector_count = connector_count
        self.max_stack_level = max_stack_level
        self.max_periods = max_periods
        self.max_profiles = max_profiles
        self.voltage_v = voltage_v
        self._profiles: list[ChargingProfile] = []

    @property
    def profiles(self) -> tuple[ChargingProfile, ...]:
        return tuple(self._profiles)

    def install(
        self,
        profile: ChargingProfile,
        *,
        transaction_active: bool = False,
        transaction_id: int | None = None,
    ) -> bool:
        """Install (or replace) a profile; False when the charge point must reject it.

        ``transaction_active``/``transaction_id`` describe the profile's
        connector: a TxProfile needs a running transaction, and the same one
        when the profile names it. A profile replaces the one with the same
        id, or the one with the same connector, purpose and stack level.
        """
        if not 0 <= profile.connector_id <= self.connector_count:
            return False
        if profile.stack_level > self.max_stack_level or len(profile.periods) > self.max_periods:
            return False
        if (
            profile.purpose is ChargingProfilePurposeType.charge_point_max_profile
            and profile.connector_id != 0
        ):
            return False
        if profile.purpose is ChargingProfilePurposeType.tx_profile:
            if profile.connector_id == 0 or not transaction_active:
                return False
            if (
                profile.transaction_id is not None
                and transaction_id is not None
                and profile.transaction_id != transaction_id
            ):
                return False
        kept = [
            existing
            for existing in self._profiles
            if existing.profile_id != profile.profile_id
            and (existing.connector_id, existing.purpose, existing.stack_level)
            != (profile.connector_id, profile.purpose, profile.stack_level)
        ]
        if len(kept) >= self.max_profiles:
            return False
        self._profiles = [*kept, profile]
        return True

    def clear(
        self,
        *,
        profile_id: int | None = None,
        connector_id: int | None = None,
        purpose: ChargingProfilePurposeType | None = None,
        stack_level: int | None = None,
    ) -> bool:
        """ClearChargingProfile: by id, or by every criterion given; True if any was removed."""

        def matches(profile: ChargingProfile) -> bool:
            if profile_id is not None:
                return profile.profile_id == profile_id
            return (
                (connector_id is None or profile.connector_id == connector_id)
                and (purpose is None or profile.purpose == purpose)
                and (stack_level is None or profile.stack_level == stack_level)
            )

        before = len(self._profiles)
        self._profiles = [profile for profile in self._profiles if not matches(profile)]
        return len(self._profiles) < before

    def end_transaction(self, connector_id: int) -> None:
        """A TxProfile lives only as long as its transaction."""
        self._profiles = [
            profile
            for profile in self._profiles
            if not (
                profile.purpose is ChargingProfilePurposeType.tx_profile
                and profile.connector_id == connector_id
            )
        ]

    def transaction_limit(self, context: ConnectorContext, at: datetime) -> Limit | None:
        """The prevailing TxProfile limit, else the prevailing TxDefaultProfile limit."""
        relative_start = context.transaction_start or at
        hit = None
        if context.in_transaction:
            hit = prevailing(
                (
                    profile
                    for profile in self._profiles
                    if profile.purpose is ChargingProfilePurposeType.tx_profile
                    and profile.connector_id == context.connector_id
                    and (
                        profile.transaction_id is None
                        or context.transaction_id is None
                        or profile.transaction_id == context.transaction_id
                    )
                ),
                at,
                relative_start,
            )
        if hit is None:
            hit = prevailing(
                (
                    profile
                    for profile in self._profiles
                    if profile.purpose is ChargingProfilePurposeType.tx_default_profile
                    and profile.connector_id in (0, context.connector_id)
                ),
                at,
                relative_start,
            )
        if hit is None:
            return None
        profile, period = hit
        return Limit(
            period_limit_a(profile, period, context.phases_in_use, self.voltage_v),
            period.number_phases,
        )

    def charge_point_limit(self, at: datetime, phases_in_use: int = 3) -> Limit | None:
        """The prevailing ChargePointMaxProfile limit for the whole station."""
        hit = prevailing(
            (
                p
                for p in self._profiles
                if p.purpose is ChargingProfilePurposeType.charge_point_max_profile
            ),
            at,
            at,
        )
        if hit is None:
            return None
        profile, period = hit
        return Limit(
            period_limit_a(profile, period, phases_in_use, self.voltage_v), period.number_phases
        )

    def offers(self, contexts: Sequence[ConnectorContext], at: datetime) -> dict[int, Offer]:
        """The current each connector offers at ``at`` (see the module docstring)."""
        station_phases = max((context.phases_in_use for context in contexts), default=3)
        station_limit = self.charge_point_limit(at, station_phases)
        sharing = sum(1 for context in contexts if context.in_transaction)
        share_a = math.inf
        if station_limit is not None:
            share_a = station_limit.current_a / max(1, sharing)
        result = {}
        for context in contexts:
            limit = self.transaction_limit(context, at)
            current_a = min(context.max_current_a, share_a, limit.current_a if limit else math.inf)
            phases = _min_phases(
                limit.number_phases if limit else None,
                station_limit.number_phases if station_limit else None,
            )
            result[context.connector_id] = Offer(max(0.0, current_a), phases)
        return result

    def composite_schedule(
        self,
        contexts: Sequence[ConnectorContext],
        connector_id: int,
        start: datetime,
        duration_s: int,
        rate_unit: ChargingRateUnitType = ChargingRateUnitType.amps,
    ) -> list[SchedulePeriod]:
        """GetCompositeSchedule: the offers of ``connector_id`` from ``start`` for ``duration_s``.

        Connector 0 reports the station's limit (its ChargePointMaxProfile,
        or the sum of its connectors' maxima). Evaluated at every instant
        where any profile may change, then merged.
        """
        end = start + timedelta(seconds=duration_s)
        relative_starts = {start} | {
            context.transaction_start for context in contexts if context.transaction_start
        }
        offsets = {0}
        for instant in self._change_instants(start, end, relative_starts):
            offset = math.ceil((instant - start).total_seconds())
            if 0 < offset < duration_s:
                offsets.add(offset)

        context = next((c for c in contexts if c.connector_id == connector_id), None)
        phases = context.phases_in_use if context else 3
        periods: list[SchedulePeriod] = []
        for offset in sorted(offsets):
            at = start + timedelta(seconds=offset)
            if context is None:
                station = self.charge_point_limit(at, phases)
                total_a = sum(c.max_current_a for c in contexts)
                offer = Offer(
                    min(total_a, station.current_a) if station else total_a,
                    station.number_phases if station else None,
                )
            else:
                offer = self.offers(contexts, at)[connector_id]
            limit = offer.current_a
            if rate_unit is ChargingRateUnitType.watts:
                limit *= self.voltage_v * (offer.number_phases or phases)
            # The schema allows one decimal; round down so the answer never overstates.
            limit = math.floor(limit * 10 + 1e-6) / 10
            if (
                periods
                and periods[-1].limit == limit
                and (periods[-1].number_phases == offer.number_phases)
            ):
                continue
            periods.append(SchedulePeriod(offset, limit, offer.number_phases))
        return periods

    def _change_instants(
        self, start: datetime, end: datetime, relative_starts: set[datetime]
    ) -> Iterable[datetime]:
        """Every instant in [start, end] where some profile's limit may change."""
        for profile in self._profiles:
            if profile.valid_from is not None:
                yield profile.valid_from
            if profile.valid_to is not None:
                yield profile.valid_to
            for cycle_start in _cycle_starts(profile, start, end, relative_starts):
                for period in profile.periods:
                    yield cycle_start + timedelta(seconds=period.start_period_s)
                if profile.duration_s is not None:
                    yield cycle_start + timedelta(seconds=profile.duration_s)


def _cycle_starts(
    profile: ChargingProfile, start: datetime, end: datetime, relative_starts: set[datetime]
) -> Iterable[datetime]:
    if profile.kind is ChargingProfileKindType.relative:
        yield from relative_starts
        return
    assert profile.start_schedule is not None
    if profile.kind is ChargingProfileKindType.absolute:
        yield profile.start_schedule
        return
    assert profile.recurrency is not None
    recurrence = timedelta(seconds=_RECURRENCE_S[profile.recurrency])
    cycle = schedule_start(profile, start, start)
    while cycle <= end:
        yield cycle
        cycle += recurrence


def _min_phases(*values: int | None) -> int | None:
    present = [value for value in values if value is not None]
    return min(present) if present else None
