"""The charging-profile logic of a simulated charge point (pure; no network, no Django)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ocpp.v16.enums import (
    ChargingProfileKindType,
    ChargingProfilePurposeType,
    ChargingRateUnitType,
    RecurrencyKind,
)

from apps.simulator.engine.profiles import (
    ChargingProfile,
    ConnectorContext,
    ProfileError,
    ProfileStore,
    SchedulePeriod,
    profile_from_ocpp,
)

T0 = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)
IDLE = (ConnectorContext(1, 32.0), ConnectorContext(2, 32.0))


def in_tx(
    connector_id: int = 1,
    *,
    start: datetime = T0,
    transaction_id: int | None = 42,
    max_current_a: float = 32.0,
    phases: int = 3,
) -> ConnectorContext:
    return ConnectorContext(connector_id, max_current_a, phases, start, transaction_id)


def profile(
    limit: float,
    *,
    purpose: ChargingProfilePurposeType = ChargingProfilePurposeType.tx_default_profile,
    connector_id: int = 0,
    stack_level: int = 0,
    profile_id: int | None = None,
    kind: ChargingProfileKindType = ChargingProfileKindType.relative,
    unit: ChargingRateUnitType = ChargingRateUnitType.amps,
    periods: tuple[SchedulePeriod, ...] | None = None,
    start: datetime | None = None,
    **extra: object,
) -> ChargingProfile:
    return ChargingProfile(
        profile_id=profile_id if profile_id is not None else stack_level * 10 + connector_id,
        stack_level=stack_level,
        purpose=purpose,
        kind=kind,
        rate_unit=unit,
        periods=periods or (SchedulePeriod(0, limit),),
        connector_id=connector_id,
        start_schedule=start
        if start is not None or kind is ChargingProfileKindType.relative
        else T0,
        **extra,  # type: ignore[arg-type]
    )


def offer_a(
    store: ProfileStore, contexts: tuple[ConnectorContext, ...], at: datetime, connector_id: int = 1
) -> float:
    return store.offers(contexts, at)[connector_id].current_a


def store_with(*profiles: ChargingProfile, transaction_id: int | None = 42) -> ProfileStore:
    store = ProfileStore(2)
    for each in profiles:
        assert store.install(each, transaction_active=True, transaction_id=transaction_id)
    return store


# ---------------------------------------------------------------------- examples


def test_without_profiles_the_connector_maximum_is_offered() -> None:
    assert offer_a(ProfileStore(2), (in_tx(max_current_a=16),), T0) == 16


def test_tx_default_on_connector_0_applies_to_every_connector() -> None:
    store = store_with(profile(10))
    offers = store.offers((in_tx(1), ConnectorContext(2, 32.0)), T0)
    assert offers[1].current_a == offers[2].current_a == 10


def test_connector_specific_default_beats_connector_0_at_equal_stack_level() -> None:
    store = store_with(profile(10), profile(20, connector_id=1))
    assert offer_a(store, IDLE, T0, 1) == 20
    assert offer_a(store, IDLE, T0, 2) == 10


def test_highest_valid_stack_level_wins_and_an_expired_one_falls_back() -> None:
    store = store_with(
        profile(10, stack_level=0),
        profile(25, stack_level=3, valid_to=T0 + timedelta(minutes=5)),
    )
    assert offer_a(store, IDLE, T0) == 25
    assert offer_a(store, IDLE, T0 + timedelta(minutes=5)) == 10


def test_a_not_yet_valid_profile_does_not_apply() -> None:
    store = store_with(profile(10), profile(3, stack_level=1, valid_from=T0 + timedelta(hours=1)))
    assert offer_a(store, IDLE, T0) == 10
    assert offer_a(store, IDLE, T0 + timedelta(hours=1)) == 3


def test_tx_profile_overrules_the_default_then_falls_back_when_it_expires() -> None:
    """SPEC §3.8: a short-lived TxProfile carries the live setpoint; the default is the
    offline current."""
    store = store_with(
        profile(8),
        profile(
            30,
            purpose=ChargingProfilePurposeType.tx_profile,
            connector_id=1,
            stack_level=1,
            kind=ChargingProfileKindType.absolute,
            transaction_id=42,
            valid_to=T0 + timedelta(seconds=90),
        ),
    )
    contexts = (in_tx(1), ConnectorContext(2, 32.0))
    assert offer_a(store, contexts, T0 + timedelta(seconds=89)) == 30
    assert offer_a(store, contexts, T0 + timedelta(seconds=90)) == 8
    # The other connector is not in that transaction.
    assert offer_a(store, contexts, T0, 2) == 8


def test_tx_profile_ends_with_its_schedule_duration() -> None:
    tx = profile(
        20,
        purpose=ChargingProfilePurposeType.tx_profile,
        connector_id=1,
        stack_level=1,
        duration_s=600,
    )
    store = store_with(profile(12), tx)
    assert offer_a(store, (in_tx(),), T0 + timedelta(seconds=599)) == 20
    assert offer_a(store, (in_tx(),), T0 + timedelta(seconds=600)) == 12


def test_tx_profile_needs_a_transaction_and_the_right_one() -> None:
    store = ProfileStore(2)
    tx = profile(
        20, purpose=ChargingProfilePurposeType.tx_profile, connector_id=1, transaction_id=42
    )
    assert not store.install(tx, transaction_active=False)
    assert not store.install(tx, transaction_active=True, transaction_id=43)
    assert not store.install(
        profile(20, purpose=ChargingProfilePurposeType.tx_profile, connector_id=0),
        transaction_active=True,
    )
    assert store.install(tx, transaction_active=True, transaction_id=42)
    store.end_transaction(1)
    assert store.profiles == ()


def test_a_tx_profile_for_another_transaction_is_ignored() -> None:
    store = store_with(
        profile(10),
        profile(
            20,
            purpose=ChargingProfilePurposeType.tx_profile,
            connector_id=1,
            stack_level=1,
            transaction_id=42,
        ),
    )
    assert offer_a(store, (in_tx(transaction_id=43),), T0) == 10


def test_charge_point_max_is_shared_by_the_connectors_in_a_transaction() -> None:
    store = store_with(profile(40, purpose=ChargingProfilePurposeType.charge_point_max_profile))
    assert offer_a(store, (in_tx(1), ConnectorContext(2, 32.0)), T0) == 32
    both = store.offers((in_tx(1), in_tx(2)), T0)
    assert both[1].current_a == both[2].current_a == 20


def test_charge_point_max_only_on_connector_0() -> None:
    store = ProfileStore(2)
    bad = profile(40, purpose=ChargingProfilePurposeType.charge_point_max_profile, connector_id=1)
    assert not store.install(bad)


def test_power_limits_are_shared_by_the_phases_in_use() -> None:
    store = store_with(profile(11040, unit=ChargingRateUnitType.watts))
    assert offer_a(store, (in_tx(phases=3),), T0) == pytest.approx(16)
    # 11040 W on one phase would be 48 A: the connector maximum caps it.
    assert offer_a(store, (in_tx(phases=1),), T0) == 32
    single = store_with(
        profile(
            3680,
            unit=ChargingRateUnitType.watts,
            periods=(SchedulePeriod(0, 3680, number_phases=1),),
        )
    )
    offer = single.offers((in_tx(phases=3),), T0)[1]
    assert offer.current_a == pytest.approx(16)
    assert offer.number_phases == 1


def test_periods_follow_the_schedule_relative_to_the_transaction_start() -> None:
    store = store_with(
        profile(
            0, periods=(SchedulePeriod(0, 6), SchedulePeriod(1800, 16), SchedulePeriod(3600, 32))
        )
    )
    started = T0 + timedelta(hours=2)
    contexts = (in_tx(start=started),)
    assert offer_a(store, contexts, started + timedelta(seconds=1799)) == 6
    assert offer_a(store, contexts, started + timedelta(seconds=1800)) == 16
    assert offer_a(store, contexts, started + timedelta(hours=5)) == 32


def test_recurring_daily_schedule() -> None:
    night_only = profile(
        0,
        kind=ChargingProfileKindType.recurring,
        recurrency=RecurrencyKind.daily,
        start=datetime(2025, 1, 1, 22, 0, tzinfo=UTC),
        periods=(SchedulePeriod(0, 32), SchedulePeriod(8 * 3600, 0)),
    )
    store = store_with(night_only)
    assert offer_a(store, IDLE, datetime(2025, 3, 3, 23, 30, tzinfo=UTC)) == 32
    assert offer_a(store, IDLE, datetime(2025, 3, 4, 5, 59, tzinfo=UTC)) == 32
    assert offer_a(store, IDLE, datetime(2025, 3, 4, 6, 0, tzinfo=UTC)) == 0
    assert offer_a(store, IDLE, datetime(2025, 3, 4, 12, 0, tzinfo=UTC)) == 0


def test_same_id_or_same_slot_replaces() -> None:
    store = ProfileStore(2)
    assert store.install(profile(10, profile_id=1))
    assert store.install(profile(12, profile_id=1, stack_level=2))
    assert [p.periods[0].limit for p in store.profiles] == [12]
    assert store.install(profile(14, profile_id=2, stack_level=2))
    assert [(p.profile_id, p.periods[0].limit) for p in store.profiles] == [(2, 14)]


def test_install_limits() -> None:
    store = ProfileStore(2, max_stack_level=3, max_periods=2)
    assert not store.install(profile(10, stack_level=4))
    assert not store.install(profile(10, connector_id=3))
    many = tuple(SchedulePeriod(i * 60, 10) for i in range(3))
    assert not store.install(profile(10, periods=many))


def test_clear_by_id_purpose_stack_level_or_connector() -> None:
    store = store_with(
        profile(10, profile_id=1),
        profile(11, profile_id=2, connector_id=1, stack_level=1),
        profile(40, profile_id=3, purpose=ChargingProfilePurposeType.charge_point_max_profile),
    )
    assert not store.clear(profile_id=99)
    assert store.clear(profile_id=2)
    assert not store.clear(purpose=ChargingProfilePurposeType.tx_profile)
    assert store.clear(purpose=ChargingProfilePurposeType.tx_default_profile, stack_level=0)
    assert [p.profile_id for p in store.profiles] == [3]
    assert store.clear()
    assert store.profiles == ()


def test_parse_an_ocpp_profile_as_the_ocpp_library_delivers_it() -> None:
    data = {
        "charging_profile_id": 5,
        "stack_level": 2,
        "charging_profile_purpose": "TxProfile",
        "charging_profile_kind": "Absolute",
        "transaction_id": 7,
        "valid_to": "2025-03-03T09:00:00Z",
        "charging_schedule": {
            "charging_rate_unit": "W",
            "duration": 3600,
            "charging_schedule_period": [
                {"start_period": 0, "limit": Decimal("7360.0"), "number_phases": 1},
                {"start_period": 900, "limit": Decimal("3680.5")},
            ],
        },
    }
    parsed = profile_from_ocpp(1, data, received_at=T0)
    assert parsed.start_schedule == T0  # an absolute schedule without a start starts now
    assert parsed.valid_to == datetime(2025, 3, 3, 9, tzinfo=UTC)
    assert parsed.periods == (SchedulePeriod(0, 7360.0, 1), SchedulePeriod(900, 3680.5))
    assert (parsed.transaction_id, parsed.duration_s, parsed.connector_id) == (7, 3600, 1)


@pytest.mark.parametrize(
    "broken",
    [
        {"charging_schedule_period": [{"start_period": 60, "limit": 10}]},
        {"charging_schedule_period": [{"start_period": 0, "limit": -1}]},
        {"charging_schedule_period": []},
        {"charging_rate_unit": "kW"},
    ],
)
def test_malformed_profiles_are_rejected(broken: dict[str, object]) -> None:
    schedule = {
        "charging_rate_unit": "A",
        "charging_schedule_period": [{"start_period": 0, "limit": 10}],
        **broken,
    }
    data = {
        "charging_profile_id": 1,
        "stack_level": 0,
        "charging_profile_purpose": "TxDefaultProfile",
        "charging_profile_kind": "Relative",
        "charging_schedule": schedule,
    }
    with pytest.raises(ProfileError):
        profile_from_ocpp(0, data, received_at=T0)


def test_composite_schedule_shows_the_fallback_after_the_tx_profile() -> None:
    store = store_with(
        profile(10),
        profile(
            20,
            purpose=ChargingProfilePurposeType.tx_profile,
            connector_id=1,
            stack_level=1,
            kind=ChargingProfileKindType.absolute,
            valid_to=T0 + timedelta(seconds=120),
        ),
    )
    periods = store.composite_schedule((in_tx(),), 1, T0, 600)
    assert periods == [SchedulePeriod(0, 20.0), SchedulePeriod(120, 10.0)]
    in_watts = store.composite_schedule((in_tx(),), 1, T0, 600, ChargingRateUnitType.watts)
    assert [p.limit for p in in_watts] == [20 * 230 * 3, 10 * 230 * 3]


def test_composite_schedule_of_connector_0_is_the_station_limit() -> None:
    store = store_with(
        profile(
            40,
            purpose=ChargingProfilePurposeType.charge_point_max_profile,
            kind=ChargingProfileKindType.absolute,
            periods=(SchedulePeriod(0, 40), SchedulePeriod(3600, 20)),
        )
    )
    assert store.composite_schedule(IDLE, 0, T0, 7200) == [
        SchedulePeriod(0, 40.0),
        SchedulePeriod(3600, 20.0),
    ]
    assert ProfileStore(2).composite_schedule(IDLE, 0, T0, 60) == [SchedulePeriod(0, 64.0)]


# ---------------------------------------------------------------------- properties

PURPOSES = list(ChargingProfilePurposeType)


@st.composite
def profiles(draw: st.DrawFn) -> ChargingProfile:
    purpose = draw(st.sampled_from(PURPOSES))
    connector_id = (
        0
        if purpose is ChargingProfilePurposeType.charge_point_max_profile
        else draw(st.integers(0, 2))
    )
    if purpose is ChargingProfilePurposeType.tx_profile:
        connector_id = draw(st.integers(1, 2))
    unit = draw(st.sampled_from(list(ChargingRateUnitType)))
    top = 64 if unit is ChargingRateUnitType.amps else 44_000
    starts = sorted(draw(st.sets(st.integers(1, 7200), max_size=3)))
    periods = tuple(
        SchedulePeriod(
            start,
            draw(st.integers(0, top * 10)) / 10,
            draw(st.sampled_from([None, 1, 2, 3])),
        )
        for start in [0, *starts]
    )
    kind = draw(
        st.sampled_from([ChargingProfileKindType.absolute, ChargingProfileKindType.relative])
    )
    valid_from = draw(st.none() | st.integers(-3600, 3600).map(lambda s: T0 + timedelta(seconds=s)))
    valid_to = draw(st.none() | st.integers(-3600, 10_800).map(lambda s: T0 + timedelta(seconds=s)))
    if valid_from and valid_to and valid_to <= valid_from:
        valid_to = None
    return ChargingProfile(
        profile_id=draw(st.integers(1, 50)),
        stack_level=draw(st.integers(0, 4)),
        purpose=purpose,
        kind=kind,
        rate_unit=unit,
        periods=periods,
        connector_id=connector_id,
        transaction_id=draw(st.sampled_from([None, 42, 43])),
        valid_from=valid_from,
        valid_to=valid_to,
        start_schedule=(
            T0 + timedelta(seconds=draw(st.integers(-7200, 3600)))
            if kind is ChargingProfileKindType.absolute
            else None
        ),
        duration_s=draw(st.none() | st.integers(60, 10_800)),
    )


@st.composite
def situations(draw: st.DrawFn) -> tuple[ProfileStore, tuple[ConnectorContext, ...], datetime]:
    contexts = tuple(
        ConnectorContext(
            connector_id,
            float(draw(st.sampled_from([16, 32]))),
            draw(st.sampled_from([1, 3])),
            *(
                (T0 + timedelta(seconds=draw(st.integers(-3600, 0))), 42)
                if draw(st.booleans())
                else (None, None)
            ),
        )
        for connector_id in (1, 2)
    )
    store = ProfileStore(2)
    for each in draw(st.lists(profiles(), max_size=8)):
        context = contexts[each.connector_id - 1] if each.connector_id else None
        store.install(
            each,
            transaction_active=bool(context and context.in_transaction),
            transaction_id=context.transaction_id if context else None,
        )
    at = T0 + timedelta(seconds=draw(st.integers(-600, 10_800)))
    return store, contexts, at


def running_limit_a(
    profile: ChargingProfile, at: datetime, context: ConnectorContext
) -> float | None:
    """An independent reading of one profile at ``at``: its limit in A, or None when not
    in force (outside validity, before its start, after its duration)."""
    if profile.valid_from is not None and at < profile.valid_from:
        return None
    if profile.valid_to is not None and at >= profile.valid_to:
        return None
    if profile.kind is ChargingProfileKindType.relative:
        start = context.transaction_start or at
    else:
        assert profile.start_schedule is not None
        start = profile.start_schedule
    elapsed_s = (at - start).total_seconds()
    if elapsed_s < 0 or (profile.duration_s is not None and elapsed_s >= profile.duration_s):
        return None
    period = [p for p in profile.periods if p.start_period_s <= elapsed_s][-1]
    if profile.rate_unit is ChargingRateUnitType.amps:
        return period.limit
    return period.limit / (230 * min(period.number_phases or 3, context.phases_in_use))


def top_limit_a(
    candidates: list[ChargingProfile], at: datetime, context: ConnectorContext
) -> float | None:
    """The limit of the highest stack level in force (connector-specific first on ties)."""
    in_force = [(p, running_limit_a(p, at, context)) for p in candidates]
    in_force = [(p, limit) for p, limit in in_force if limit is not None]
    if not in_force:
        return None
    return max(in_force, key=lambda item: (item[0].stack_level, item[0].connector_id != 0))[1]


@given(situations())
def test_offers_never_exceed_the_connector_or_any_prevailing_profile(
    situation: tuple[ProfileStore, tuple[ConnectorContext, ...], datetime],
) -> None:
    store, contexts, at = situation
    offers = store.offers(contexts, at)
    for context in contexts:
        offered = offers[context.connector_id].current_a
        assert 0 <= offered <= context.max_current_a
        own = [p for p in store.profiles if p.connector_id in (0, context.connector_id)]
        tx_limit = None
        if context.in_transaction:
            tx_limit = top_limit_a(
                [
                    p
                    for p in own
                    if p.purpose is ChargingProfilePurposeType.tx_profile
                    and p.connector_id == context.connector_id
                    and p.transaction_id in (None, context.transaction_id)
                ],
                at,
                context,
            )
        if tx_limit is None:
            tx_limit = top_limit_a(
                [p for p in own if p.purpose is ChargingProfilePurposeType.tx_default_profile],
                at,
                context,
            )
        if tx_limit is not None:
            assert offered <= tx_limit + 1e-9
        station = top_limit_a(
            [
                p
                for p in store.profiles
                if p.purpose is ChargingProfilePurposeType.charge_point_max_profile
            ],
            at,
            ConnectorContext(0, math.inf, max(c.phases_in_use for c in contexts)),
        )
        if station is not None:
            assert offered <= station + 1e-9
        if tx_limit is None and station is None:
            assert offered == context.max_current_a


@given(situations())
def test_connectors_in_a_transaction_share_the_station_limit(
    situation: tuple[ProfileStore, tuple[ConnectorContext, ...], datetime],
) -> None:
    store, contexts, at = situation
    station = store.charge_point_limit(at, max(c.phases_in_use for c in contexts))
    offers = store.offers(contexts, at)
    if station is not None:
        total = sum(offers[c.connector_id].current_a for c in contexts if c.in_transaction)
        assert total <= station.current_a + 1e-9


@given(situations())
def test_tx_profiles_not_in_force_change_nothing(
    situation: tuple[ProfileStore, tuple[ConnectorContext, ...], datetime],
) -> None:
    """Once a TxProfile has expired the station is back on its default profile."""
    store, contexts, at = situation
    pruned = ProfileStore(2)
    for each in store.profiles:
        context = contexts[each.connector_id - 1] if each.connector_id else contexts[0]
        if (
            each.purpose is ChargingProfilePurposeType.tx_profile
            and running_limit_a(each, at, context) is None
        ):
            continue
        pruned.install(each, transaction_active=True)
    assert pruned.offers(contexts, at) == store.offers(contexts, at)


@given(situations(), st.integers(0, 3599))
def test_composite_schedule_agrees_with_the_offers(
    situation: tuple[ProfileStore, tuple[ConnectorContext, ...], datetime], offset_s: int
) -> None:
    store, contexts, start = situation
    periods = store.composite_schedule(contexts, 1, start, 3600)
    assert periods[0].start_period_s == 0
    covering = [p for p in periods if p.start_period_s <= offset_s][-1]
    offered = store.offers(contexts, start + timedelta(seconds=offset_s))[1].current_a
    assert covering.limit == math.floor(offered * 10 + 1e-6) / 10
