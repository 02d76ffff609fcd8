"""Benchmark of the allocator: 1000 sessions in 20 zones over 4 levels.

Run: ``.venv/bin/python tests/bench/bench_allocator.py [--runs 200] [--sessions 1000]``.
Prints the p50/p99 time of one allocation (target: p50 ≤ 10 ms). Each run is a
control tick: new meter and charger readings, the previous ranking, setpoints
and idle state fed back, so the deadband, optimisation and idle paths all run.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from apps.energy.allocator import (
    Allocation,
    Connector,
    CurrentType,
    PhaseWiring,
    Reserve,
    Session,
    SiteSettings,
    SiteSnapshot,
    Zone,
    allocate,
)

NOW_S = 1_750_000_000.0


def build_zones() -> tuple[list[Zone], list[int]]:
    """A 20-zone tree on 4 levels: 1 + 3 + 6 + 10 zones; returns zones and terminal ids."""
    zones = [Zone(zone_id=1, max_current_a=1600, dynamic=True, meter_current_a=(300, 280, 320))]
    level2 = [2, 3, 4]
    level3 = [5, 6, 7, 8, 9, 10]
    level4 = list(range(11, 21))
    for zone_id in level2:
        zones.append(Zone(zone_id=zone_id, max_current_a=630, parent_id=1))
    for index, zone_id in enumerate(level3):
        dynamic = index % 2 == 0
        zones.append(
            Zone(
                zone_id=zone_id,
                max_current_a=250,
                parent_id=level2[index // 2],
                dynamic=dynamic,
                degraded_current_a=60,
                meter_current_a=(40, 35, 50) if dynamic else None,
                phase_imbalance_limit_a=40 if index == 1 else None,
            )
        )
    for index, zone_id in enumerate(level4):
        zones.append(Zone(zone_id=zone_id, max_current_a=125, parent_id=level3[index // 2]))
    terminal = [*level4, 10]
    return zones, terminal


def build_sessions(count: int, terminal: list[int], rng: random.Random) -> list[Session]:
    wirings = list(PhaseWiring)
    sessions = []
    for number in range(count):
        is_dc = rng.random() < 0.05
        connector = Connector(
            key=f"CP{number:04d}/1",
            zone_id=terminal[number % len(terminal)],
            wiring=rng.choice(wirings),
            current_type=CurrentType.DC if is_dc else CurrentType.AC,
            max_current_a=None if is_dc else rng.choice([16.0, 32.0]),
            max_power_w=50_000.0 if is_dc else None,
        )
        drawn = rng.uniform(0, 16)
        sessions.append(
            Session(
                connector=connector,
                vip=rng.random() < 0.03,
                energy_wh=rng.uniform(0, 60_000),
                charging_duration_s=rng.uniform(0, 30_000),
                ev_phases=rng.choice([1, 3, None]),
                measured_current_a=(drawn, drawn, drawn),
            )
        )
    return sessions


def _jitter(zone: Zone, rng: random.Random) -> tuple[float, float, float]:
    l1, l2, l3 = zone.meter_current_a or (0.0, 0.0, 0.0)
    return (l1 + rng.uniform(-3, 3), l2 + rng.uniform(-3, 3), l3 + rng.uniform(-3, 3))


def next_tick(site: SiteSnapshot, allocation: Allocation, rng: random.Random) -> SiteSnapshot:
    """The site a second later: readings move, outputs are fed back."""
    zones = tuple(
        zone if zone.meter_current_a is None else replace(zone, meter_current_a=_jitter(zone, rng))
        for zone in site.zones
    )
    results = {item.key: item for item in allocation.sessions}
    sessions = []
    for session in site.sessions:
        result = results[session.key]
        drawn = max(0.0, min(result.setpoint_a, result.setpoint_a - rng.uniform(0, 3)))
        sessions.append(
            replace(
                session,
                measured_current_a=(drawn, drawn, drawn),
                last_setpoint_a=result.setpoint_a,
                last_setpoint_at_s=site.now_s if result.changed else session.last_setpoint_at_s,
                last_reason=result.reason,
                idle_since_s=result.idle_since_s,
            )
        )
    return replace(
        site,
        now_s=site.now_s + 1,
        zones=zones,
        sessions=tuple(sessions),
        previous_ranking=allocation.ranking,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--sessions", type=int, default=1000)
    args = parser.parse_args()

    rng = random.Random(20)
    zones, terminal = build_zones()
    site = SiteSnapshot(
        now_s=NOW_S,
        zones=tuple(zones),
        sessions=tuple(build_sessions(args.sessions, terminal, rng)),
        reserves=(Reserve(zone_id=terminal[0], current_a=(10, 10, 10), key="offline"),),
        settings=SiteSettings(idle_suspension_enabled=True),
    )
    started = time.perf_counter()
    allocation = allocate(site)
    cold_ms = (time.perf_counter() - started) * 1000

    timings_ms = []
    cpu_ms = []
    for _ in range(args.runs):
        site = next_tick(site, allocation, rng)
        started, started_cpu = time.perf_counter(), time.thread_time()
        allocation = allocate(site)
        timings_ms.append((time.perf_counter() - started) * 1000)
        cpu_ms.append((time.thread_time() - started_cpu) * 1000)

    timings_ms.sort()
    p50 = statistics.median(timings_ms)
    p99 = timings_ms[min(len(timings_ms) - 1, round(0.99 * (len(timings_ms) - 1)))]
    cpu_p50 = statistics.median(cpu_ms)
    charging = sum(1 for item in allocation.sessions if item.charging)
    changed = sum(1 for item in allocation.sessions if item.changed)
    print(
        f"allocator: {args.sessions} sessions, {len(zones)} zones (4 levels), {args.runs} runs\n"
        f"  first allocation {cold_ms:.2f} ms\n"
        f"  p50 {p50:.2f} ms   p99 {p99:.2f} ms   max {timings_ms[-1]:.2f} ms"
        f"   (CPU time p50 {cpu_p50:.2f} ms)\n"
        f"  last tick: {charging} charging, {changed} setpoints to send"
    )


if __name__ == "__main__":
    main()
