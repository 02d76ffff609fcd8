"""Benchmark: control-loop reaction to an overload with N simulated stations (default 250).

Run by hand (not collected by pytest):

    .venv/bin/python tests/bench/bench_control_loop.py [--stations 250] [--steps 10]

A ``make run``-style stack (SQLite + embedded Redis, or DATABASE_URL /
REDIS_URL) drives N real OCPP stations (the simulator, in this process) in one
dynamic zone whose Modbus meter (pymodbus, in this process) measures a building
load plus the EVs. Each step raises the building load so that the zone is
overloaded, then measures:

- from the first meter reading that shows the overload (its ``read_at`` in
  Redis) to the last SetChargingProfile evce sent (its time in the stations'
  OCPP log): the figure SPEC §3.4 bounds;
- from that reading to the moment the last station had applied its new
  setpoint (adds the simulated stations' own handling, all in this process);
- from the load change itself (includes up to one polling period).

It then lowers the load again and waits for the sessions to ramp back up,
and reports:

- utilisation of the saturated zone: what the stations offer, once they have
  settled, against what the zone has for charging (``--share`` sets each
  session's share at the high load; a fractional one shows what whole-amp
  profiles cost);
- recovery: from the load falling back to every session offered 16 A again
  (break before make waits for the EVs to follow each decrease first, and a
  raise keeps room for its EV's ramp until a sample shows it, so raises come
  in rounds); also to every session within two deadbands (2 A) of it, since
  the last part of a raise that must fit twice may not be worth a profile.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evce_site.settings")


SAMPLE_INTERVAL_S = 10


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stations", type=int, default=250)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--share", type=float, default=8.0, help="A per session at high load")
    args = parser.parse_args()

    import redis

    from apps.simulator.engine import ArrivalPattern, Drivers, Endpoint, Fleet
    from apps.simulator.engine.ev import EvModel
    from apps.simulator.engine.fleet import station_specs
    from apps.simulator.modbus_meter import MeterSimulator
    from tests.e2e.stack import start_stack

    n = args.stations
    # Three-phase EVs load every phase: each gets 16 A at the low building load
    # and must drop to 8 A at the high one.
    zone_max_a = 20 + 16 * n
    low_a, high_a = 20.0, 20.0 + (16 - args.share) * n
    meter = MeterSimulator(host="127.0.0.1", port=0)
    meter.add_unit(1)
    port = meter.start_in_thread()
    data_dir = Path(tempfile.mkdtemp(prefix="evce-bench-loop-"))
    specs = station_specs(
        n,
        prefix="B-",
        wiring="rotate",
        max_current_a=16.0,
        configuration={"MeterValueSampleInterval": str(SAMPLE_INTERVAL_S)},
    )
    stations_yaml = "\n".join(
        f"  - {{identity: {s.identity}, name: {s.identity}, zone: Main, group: Open, connectors: "
        f"[{{id: 1, phases: {s.connectors[0].wiring.value}, max_current_a: 16}}]}}"
        for s in specs
    )
    (data_dir / "site.yaml").write_text(
        "site: {name: Bench, meter_poll_interval_ms: 500, max_zones: 20, "
        "optimisation: {enabled: false}}\n"
        f"meters:\n  - {{name: main, model: pm5320, host: 127.0.0.1, port: {port}, unit_id: 1, "
        "timeout_ms: 300}\n"
        f"zones:\n  - {{name: Main, max_current_a: {zone_max_a:.0f}, meter: main, "
        "degraded_current_a: 6}\n"
        "auth_groups:\n  - {name: Open, online: all_cards, offline: authorize_all}\n"
        "cards:\n  - {id_tag: BENCH, authorized: true, groups: [Open]}\n"
        f"stations:\n{stations_yaml}\n"
    )
    stack = start_stack(data_dir, demo=False)
    building = [low_a]
    try:
        result = stack.manage("site", "import", str(data_dir / "site.yaml"), timeout_s=300)
        assert result.returncode == 0, result.stderr
        three_phase = EvModel("3×16 A", phases=3, max_current_a=16, battery_kwh=500)
        fleet = Fleet.build(
            specs,
            Endpoint(f"ws://127.0.0.1:{stack.ocpp_port}"),
            arrivals=ArrivalPattern.parse("all"),
            drivers=Drivers(id_tags=("BENCH",), ev_models=(three_phase,), soc_range=(0.1, 0.2)),
            seed=1,
        )

        def feed(fleet_: Fleet) -> None:
            evs = fleet_.phase_currents_a()
            meter.set_values(1, current_a=tuple(building[0] + e for e in evs))

        fleet.add_listener(feed)
        loop = asyncio.new_event_loop()
        runner = threading.Thread(
            target=loop.run_until_complete, args=(fleet.run(None),), daemon=True
        )
        runner.start()
        redis_url = stack.env.get("REDIS_URL") or f"unix://{data_dir / 'redis.sock'}"
        client = redis.Redis.from_url(redis_url, decode_responses=True)

        def offered() -> list[float]:
            return [c.offered_a for s in fleet.stations.values() for c in s.connectors.values()]

        def wait(condition, timeout_s: float) -> bool:
            end = time.monotonic() + timeout_s
            while time.monotonic() < end:
                if condition():
                    return True
                time.sleep(0.05)
            return False

        def settled(timeout_s: float) -> bool:
            """Every session charging again, its setpoint unchanged for over a sample interval.

            A step starts from a steady state: the stations' last MeterValues show
            what the EVs draw now, not what they drew before the last change.
            """
            end = time.monotonic() + timeout_s
            while time.monotonic() < end:
                if not wait(lambda: all(o >= 12 for o in offered()), end - time.monotonic()):
                    return False
                before = offered()
                if not wait(lambda before=before: offered() != before, SAMPLE_INTERVAL_S + 2):
                    return True
            return False

        if not settled(300):
            raise SystemExit(f"sessions did not settle: {sorted(offered())[:10]}…")

        def last_profile_sent(start: float, end: float) -> float | None:
            """Time of the last SetChargingProfile written to a socket in [start, end]."""
            rows = stack.query(
                "SELECT at FROM stations_ocppmessage WHERE action = 'SetChargingProfile' "
                "AND direction = 'out' AND message_type = 2"
            )
            times = [
                (
                    at if isinstance(at, datetime) else datetime.fromisoformat(at + "+00:00")
                ).timestamp()
                for (at,) in rows
            ]
            inside = [t for t in times if start <= t <= end]
            return max(inside) if inside else None

        from_reading: list[float] = []
        sent_from_reading: list[float] = []
        from_change: list[float] = []
        utilisation: list[float] = []
        recovery: list[float] = []
        recovery_near: list[float] = []
        for _step in range(args.steps):
            changed_at = time.time()
            building[0] = high_a
            feed(fleet)
            limit = zone_max_a - high_a
            # The first reading that shows the overload.
            read_at = None
            while read_at is None and time.time() - changed_at < 5:
                raw = client.get("evce:meter:1")
                state = json.loads(raw) if raw else {}
                values = state.get("values") or {}
                if state.get("read_at"):
                    moment = datetime.fromisoformat(state["read_at"]).timestamp()
                    if moment >= changed_at and (values.get("current_l1_a") or 0) >= high_a:
                        read_at = moment
                time.sleep(0.005)
            if not wait(lambda limit=limit: sum(offered()) <= limit + 1e-6, 10):
                print("step timed out")
                continue
            done_at = time.time()
            from_change.append(done_at - changed_at)
            if read_at is not None:
                from_reading.append(done_at - read_at)
                time.sleep(1.5)  # the OCPP log is written every half second
                sent_at = last_profile_sent(read_at, done_at)
                if sent_at is not None:
                    sent_from_reading.append(sent_at - read_at)
            time.sleep(3)  # the EVs follow; raises freed by others' decreases go out
            utilisation.append(sum(offered()) / limit)
            building[0] = low_a
            feed(fleet)
            lowered_at = time.time()
            if wait(lambda: all(o >= 14.0 for o in offered()), 60):
                recovery_near.append(time.time() - lowered_at)
            if wait(lambda: all(o >= 15.9 for o in offered()), 60 - (time.time() - lowered_at)):
                recovery.append(time.time() - lowered_at)
            if not settled(120):
                print("sessions did not settle back at 16 A")
        loop.call_soon_threadsafe(fleet.request_stop)
        runner.join(timeout=30)
    finally:
        stack.stop()
        meter.stop_thread()

    print(f"stations: {n}, steps: {len(from_change)}")
    if sent_from_reading:
        print(
            f"from the overload reading to the last SetChargingProfile sent: "
            f"p50 {1000 * statistics.median(sent_from_reading):.0f} ms  "
            f"p95 {1000 * percentile(sent_from_reading, 0.95):.0f} ms  "
            f"max {1000 * max(sent_from_reading):.0f} ms"
        )
    if from_reading:
        print(
            f"reaction from the overload reading to the last setpoint applied: "
            f"p50 {1000 * statistics.median(from_reading):.0f} ms  "
            f"p95 {1000 * percentile(from_reading, 0.95):.0f} ms  "
            f"max {1000 * max(from_reading):.0f} ms"
        )
    if utilisation:
        print(
            f"utilisation of the saturated zone (offered / available): "
            f"mean {100 * statistics.mean(utilisation):.1f} %  min {100 * min(utilisation):.1f} %"
        )
    if recovery_near:
        print(
            f"recovery to within 2 A of 16 A after the load falls: "
            f"p50 {statistics.median(recovery_near):.2f} s  max {max(recovery_near):.2f} s"
        )
    print(f"steps where every session was back at 16 A within 60 s: {len(recovery)}")
    if recovery:
        print(
            f"recovery to 16 A after the load falls: p50 {statistics.median(recovery):.2f} s  "
            f"max {max(recovery):.2f} s"
        )
    if from_change:
        print(
            f"reaction from the load change (includes polling): "
            f"p50 {1000 * statistics.median(from_change):.0f} ms  "
            f"p95 {1000 * percentile(from_change, 0.95):.0f} ms"
        )


if __name__ == "__main__":
    main()
