"""Floors, load shedding, VIP, phase wiring, imbalance and DC: SPEC §3.3 by example."""

from __future__ import annotations

from dataclasses import replace

import pytest

from apps.energy.allocator import (
    FloorMode,
    Phase,
    PhaseWiring,
    Priority,
    Reason,
    SiteSettings,
    SiteSnapshot,
    Zone,
    allocate,
)

from .helpers import NOW_S, ac, dc, run, setpoints, static


def test_sessions_share_max_min_fairly_and_freed_current_flows_to_others() -> None:
    """40 A for a 10 A connector and two 32 A ones: 10, 15, 15."""
    allocation = run([static(1, 40)], [ac("small", max_a=10), ac("b"), ac("c")])
    assert setpoints(allocation) == {"small": 10.0, "b": 15.0, "c": 15.0}
    assert allocation.session("small").reason is Reason.CONNECTOR_MAX
    assert allocation.session("b").reason is Reason.ZONE_LIMIT
    assert allocation.session("b").limiting_phase is Phase.L1


def test_setpoints_are_rounded_down_to_a_tenth_of_an_amp() -> None:
    allocation = run([static(1, 20)], [ac("a"), ac("b"), ac("c")])
    assert setpoints(allocation) == {"a": 6.6, "b": 6.6, "c": 6.6}


def test_below_the_floor_a_session_is_suspended_never_given_less() -> None:
    """5 A cannot give anyone 6 A: everyone gets 0, not 5 A or 2.5 A."""
    allocation = run([static(1, 5)], [ac("a"), ac("b")])
    assert setpoints(allocation) == {"a": 0.0, "b": 0.0}
    assert allocation.session("a").reason is Reason.NO_CAPACITY


def test_shedding_by_energy_keeps_the_sessions_that_received_least() -> None:
    sessions = [
        ac("full", energy_wh=30_000),
        ac("half", energy_wh=15_000),
        ac("empty", energy_wh=1_000),
    ]
    allocation = run([static(1, 13)], sessions)
    assert setpoints(allocation) == {"full": 0.0, "half": 6.5, "empty": 6.5}
    assert allocation.session("full").reason is Reason.SHED_PRIORITY
    assert allocation.session("full").limiting_zone_id == 1
    assert allocation.ranking.keys == ("empty", "half", "full")


def test_shedding_by_duration_keeps_the_shortest_charging() -> None:
    sessions = [
        ac("long", charging_duration_s=7200, energy_wh=1_000),
        ac("short", charging_duration_s=600, energy_wh=20_000),
    ]
    settings = SiteSettings(priority=Priority.DURATION)
    assert setpoints(run([static(1, 10)], sessions, settings=settings)) == {
        "long": 0.0,
        "short": 10.0,
    }


def test_shedding_skips_to_a_lower_ranked_session_that_fits_elsewhere() -> None:
    zones = [static(1, 100), static(2, 8, parent_id=1), static(3, 8, parent_id=1)]
    sessions = [ac("a", 2, energy_wh=0), ac("b", 2, energy_wh=1), ac("c", 3, energy_wh=2)]
    assert setpoints(run(zones, sessions)) == {"a": 8.0, "b": 0.0, "c": 8.0}


def test_ev_ze_ready_floors_are_8_a_single_phase_and_14_a_three_phase() -> None:
    settings = SiteSettings(floor_mode=FloorMode.EVZE)
    mono = ac("mono", wiring=PhaseWiring.MONO1)
    tri = ac("tri", ev_phases=3)
    allocation = run([static(1, 13)], [mono, tri], settings=settings)
    assert allocation.session("mono").floor_a == 8.0
    assert allocation.session("tri").floor_a == 14.0
    assert setpoints(allocation) == {"mono": 13.0, "tri": 0.0}


def test_a_new_arrival_displaces_the_longest_charged_car() -> None:
    zone = static(1, 10)
    first = run([zone], [ac("old", energy_wh=20_000)], now_s=NOW_S)
    assert setpoints(first) == {"old": 10.0}
    later = run(
        [zone],
        [ac("old", energy_wh=21_000), ac("new", energy_wh=0)],
        previous=first.ranking,
        now_s=NOW_S + 60,
    )
    assert later.reranked
    assert setpoints(later) == {"old": 0.0, "new": 10.0}


def test_the_ranking_is_kept_for_15_minutes_so_cars_do_not_flap() -> None:
    zone = static(1, 10)
    first = run([zone], [ac("a", energy_wh=1_000), ac("b", energy_wh=2_000)])
    assert setpoints(first) == {"a": 10.0, "b": 0.0}
    # "a" charges and overtakes "b" in energy: no re-rank before 15 minutes…
    swapped = [ac("a", energy_wh=3_000), ac("b", energy_wh=2_000)]
    kept = run([zone], swapped, previous=first.ranking, now_s=NOW_S + 899)
    assert not kept.reranked
    assert setpoints(kept) == {"a": 10.0, "b": 0.0}
    # …then the review swaps them.
    reviewed = run([zone], swapped, previous=kept.ranking, now_s=NOW_S + 900)
    assert reviewed.reranked
    assert setpoints(reviewed) == {"a": 0.0, "b": 10.0}


@pytest.mark.parametrize(
    "changed_zone",
    [
        static(1, 20),  # the zone's limit changed
        replace(static(1, 10), dynamic=True, meter_current_a=None, degraded_current_a=10),
    ],
    ids=["limit", "meter-lost"],
)
def test_a_capacity_change_re_ranks_at_once(changed_zone: Zone) -> None:
    sessions = [ac("a", energy_wh=1_000), ac("b", energy_wh=2_000)]
    first = run([static(1, 10)], sessions)
    swapped = [ac("a", energy_wh=3_000), ac("b", energy_wh=2_000)]
    later = run([changed_zone], swapped, previous=first.ranking, now_s=NOW_S + 30)
    assert later.reranked
    assert later.ranking.keys == ("b", "a")


def test_capacity_changed_flag_re_ranks() -> None:
    first = run([static(1, 10)], [ac("a", energy_wh=1), ac("b", energy_wh=2)])
    swapped = [ac("a", energy_wh=3), ac("b", energy_wh=2)]
    later = run(
        [static(1, 10)], swapped, previous=first.ranking, now_s=NOW_S + 1, capacity_changed=True
    )
    assert later.ranking.keys == ("b", "a")


def test_vip_is_served_first_up_to_its_connector_maximum() -> None:
    sessions = [ac("vip", vip=True, energy_wh=50_000), ac("b"), ac("c")]
    allocation = run([static(1, 40)], sessions)
    assert setpoints(allocation) == {"vip": 32.0, "b": 8.0, "c": 0.0}
    assert allocation.session("vip").reason is Reason.CONNECTOR_MAX
    assert allocation.session("c").reason is Reason.SHED_PRIORITY
    assert allocation.ranking.keys[0] == "vip"


def test_vip_sessions_share_fairly_when_capacity_is_short() -> None:
    sessions = [ac("v1", vip=True), ac("v2", vip=True), ac("other")]
    allocation = run([static(1, 30)], sessions)
    assert setpoints(allocation) == {"v1": 15.0, "v2": 15.0, "other": 0.0}


def test_single_phase_ev_on_rotated_wiring_loads_the_first_listed_phase() -> None:
    """One-phase EVs on TRI123, TRI231, TRI312 land on L1, L2, L3: each gets the full 32 A."""
    sessions = [
        ac("l1", wiring=PhaseWiring.TRI123, ev_phases=1),
        ac("l2", wiring=PhaseWiring.TRI231, ev_phases=1),
        ac("l3", wiring=PhaseWiring.TRI312, ev_phases=1),
    ]
    allocation = run([static(1, 32)], sessions)
    assert setpoints(allocation) == {"l1": 32.0, "l2": 32.0, "l3": 32.0}
    assert allocation.session("l2").phases == (Phase.L2,)
    assert allocation.zone(1).allocated_a == (32.0, 32.0, 32.0)


def test_sessions_on_the_same_phase_share_it() -> None:
    sessions = [
        ac("mono2", wiring=PhaseWiring.MONO2),
        ac("tri231", wiring=PhaseWiring.TRI231, ev_phases=1),
        ac("tri", ev_phases=3),
    ]
    allocation = run([static(1, 32)], sessions)
    assert setpoints(allocation) == {"mono2": 10.6, "tri231": 10.6, "tri": 10.6}
    assert allocation.session("tri").limiting_phase is Phase.L2
    # L1 and L3 carry only the three-phase car.
    assert allocation.zone(1).allocated_a == (10.6, 31.8, 10.6)


def test_unknown_phase_count_counts_against_every_phase_of_the_wiring() -> None:
    allocation = run([static(1, 32)], [ac("unknown"), ac("mono", wiring=PhaseWiring.MONO3)])
    assert allocation.session("unknown").phases == (Phase.L1, Phase.L2, Phase.L3)
    assert setpoints(allocation) == {"unknown": 16.0, "mono": 16.0}


def test_phase_imbalance_limit_caps_single_phase_load() -> None:
    """Four single-phase EVs on L1 with a 20 A imbalance limit: three share 20 A."""
    zone = static(1, 100, phase_imbalance_limit_a=20)
    sessions = [ac(f"m{n}", wiring=PhaseWiring.MONO1, energy_wh=n) for n in range(4)]
    allocation = run([zone], sessions)
    assert setpoints(allocation) == {"m0": 6.6, "m1": 6.6, "m2": 6.6, "m3": 0.0}
    assert allocation.session("m3").reason is Reason.IMBALANCE_LIMIT
    assert allocation.session("m0").reason is Reason.IMBALANCE_LIMIT


def test_three_phase_load_does_not_count_against_the_imbalance_limit() -> None:
    zone = static(1, 100, phase_imbalance_limit_a=10)
    allocation = run([zone], [ac("mono", wiring=PhaseWiring.MONO1), ac("tri", ev_phases=3)])
    assert setpoints(allocation) == {"mono": 10.0, "tri": 32.0}


def test_imbalance_loosens_as_other_phases_rise() -> None:
    """L1 singles stopped by the limit rise again when the L3 single rises."""
    zone = static(1, 100, phase_imbalance_limit_a=20)
    sessions = [
        *(ac(f"l1-{n}", wiring=PhaseWiring.MONO1) for n in range(3)),
        ac("l3", wiring=PhaseWiring.MONO3, max_a=20),
        ac("l2", wiring=PhaseWiring.MONO2, max_a=20),
    ]
    allocation = run([zone], sessions)
    loads = allocation.zone(1).allocated_a
    assert max(loads) - min(loads) <= 20
    assert setpoints(allocation)["l1-0"] == 13.3


def test_dc_charger_is_driven_in_watts_at_the_nominal_voltage() -> None:
    """50 kW on three phases at 230 V is 72.4 A per phase; a 40 A zone gives 27.6 kW."""
    allocation = run([static(1, 100)], [dc("dc", max_w=50_000)])
    assert allocation.session("dc").setpoint_a == 72.4
    assert allocation.session("dc").setpoint_w == 49_956.0
    assert allocation.session("dc").reason is Reason.CONNECTOR_MAX
    limited = run([static(1, 40)], [dc("dc", max_w=50_000)])
    assert limited.session("dc").setpoint_a == 40.0
    assert limited.session("dc").setpoint_w == 27_600.0


def test_dc_conversion_uses_the_zone_nominal_voltage() -> None:
    allocation = run([static(1, 10, nominal_voltage_v=240)], [dc("dc", max_w=50_000)])
    assert allocation.session("dc").setpoint_w == 7_200.0


def test_dc_charger_loads_every_phase_of_its_wiring() -> None:
    allocation = run([static(1, 32)], [dc("dc", max_w=50_000, ev_phases=1)])
    assert allocation.session("dc").phases == (Phase.L1, Phase.L2, Phase.L3)


def test_connector_maximum_below_the_floor_never_charges() -> None:
    allocation = run([static(1, 32)], [ac("tiny", max_a=5)])
    assert allocation.session("tiny").setpoint_a == 0
    assert allocation.session("tiny").reason is Reason.CONNECTOR_MAX


def test_session_in_an_unknown_zone_fails_closed() -> None:
    allocation = run([static(1, 32)], [ac("lost", zone_id=99), ac("ok")])
    assert allocation.session("lost").setpoint_a == 0
    assert allocation.session("lost").reason is Reason.INVALID_INPUT
    assert allocation.session("ok").setpoint_a == 32.0


def test_result_does_not_depend_on_input_order() -> None:
    zones = (static(1, 40), static(2, 32, parent_id=1))
    sessions = (ac("b", 2), ac("a", 2), ac("c", 1))
    site = SiteSnapshot(now_s=NOW_S, zones=zones, sessions=sessions)
    reordered = SiteSnapshot(now_s=NOW_S, zones=zones[::-1], sessions=sessions[::-1])
    assert allocate(site) == allocate(reordered)
    assert [item.key for item in allocate(site).sessions] == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("zones", "message"),
    [
        ([static(1, 10), static(1, 20)], "duplicate zone id 1"),
        ([static(1, 10, parent_id=7)], "unknown parent 7"),
        ([static(1, 10, parent_id=2), static(2, 10, parent_id=1)], "cycle"),
    ],
)
def test_an_inconsistent_zone_tree_is_refused(zones: list[Zone], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        run(zones, [])


def test_duplicate_sessions_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate session"):
        run([static(1, 10)], [ac("a"), ac("a")])
