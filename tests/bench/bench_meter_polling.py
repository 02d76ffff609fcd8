"""Benchmark: 20 Modbus TCP meters polled every 500 ms by a running evce (beat + worker).

Run by hand (not collected by pytest):

    .venv/bin/python tests/bench/bench_meter_polling.py [--meters 20] [--duration 120]

It starts a ``make run``-style stack on free ports (SQLite + embedded Redis, or
DATABASE_URL / REDIS_URL when set), serves the meters from the meter simulator,
samples each meter's ``read_at`` in Redis every 20 ms, and prints the achieved
polling period (p50/p99/max) and the CPU used by the beat and worker processes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evce_site.settings")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--meters", type=int, default=20)
    parser.add_argument("--duration", type=float, default=120.0)
    args = parser.parse_args()

    import psutil
    import redis

    from apps.simulator.modbus_meter import MeterSimulator
    from tests.e2e.stack import start_stack

    simulators = []
    meters_yaml = []
    per_port = 5
    for first in range(0, args.meters, per_port):
        sim = MeterSimulator(host="127.0.0.1", port=0)
        for unit in range(1, min(per_port, args.meters - first) + 1):
            sim.add_unit(unit)
            sim.set_values(unit, current_a=(10.0 + unit, 11.0, 12.0), energy_kwh=100.0)
            meters_yaml.append(
                f"  - {{name: m{first + unit:02d}, model: pm5320, host: 127.0.0.1, "
                f"port: PORT{len(simulators)}, unit_id: {unit}, timeout_ms: 400}}"
            )
        simulators.append(sim)
    for index, sim in enumerate(simulators):
        port = sim.start_in_thread()
        meters_yaml = [line.replace(f"PORT{index},", f"{port},") for line in meters_yaml]

    data_dir = Path(tempfile.mkdtemp(prefix="evce-bench-meters-"))
    site_file = data_dir / "site.yaml"
    site_file.write_text(
        "site: {name: Meter bench, meter_poll_interval_ms: 500}\nmeters:\n"
        + "\n".join(meters_yaml)
        + "\n"
    )
    stack = start_stack(data_dir, demo=False)
    try:
        result = stack.manage("site", "import", str(site_file))
        assert result.returncode == 0, result.stderr
        meter_ids = json.loads(
            stack.manage(
                "shell",
                "-v",
                "0",
                "-c",
                "import json; from apps.meters.models import Meter; "
                "print(json.dumps(list(Meter.objects.values_list('pk', flat=True))))",
            ).stdout
        )
        redis_url = stack.env.get("REDIS_URL") or f"unix://{data_dir / 'redis.sock'}"
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        keys = [f"evce:meter:{i}" for i in meter_ids]
        time.sleep(5)  # let the workers connect to every meter

        roles: dict[str, list] = {}
        for child in psutil.Process(stack.process.pid).children(recursive=True):
            cmd = " ".join(child.cmdline())
            role = "beat" if " beat" in cmd else "worker" if " worker" in cmd else "other"
            roles.setdefault(role, []).append(child)
        cpu_before = {
            role: sum(sum(p.cpu_times()[:2]) for p in procs) for role, procs in roles.items()
        }
        last: dict[str, str] = {}
        periods_ms: list[float] = []
        started = time.monotonic()
        while time.monotonic() - started < args.duration:
            for key, raw in zip(keys, client.mget(keys), strict=True):
                if not raw:
                    continue
                read_at = json.loads(raw).get("read_at")
                if read_at and last.get(key) and read_at != last[key]:
                    from datetime import datetime

                    delta = datetime.fromisoformat(read_at) - datetime.fromisoformat(last[key])
                    periods_ms.append(delta.total_seconds() * 1000)
                if read_at:
                    last[key] = read_at
            time.sleep(0.02)
        wall_s = time.monotonic() - started
        cpu_after = {
            role: sum(sum(p.cpu_times()[:2]) for p in procs) for role, procs in roles.items()
        }
        failures = sum(
            1 for raw in client.mget(keys) if raw and json.loads(raw).get("status") != "connected"
        )
    finally:
        stack.stop()
        for sim in simulators:
            sim.stop_thread()

    print(
        f"meters: {args.meters}, target period 500 ms, duration {wall_s:.0f} s, "
        f"polls observed {len(periods_ms)}"
    )
    if periods_ms:
        print(
            f"achieved period ms: p50 {statistics.median(periods_ms):.0f}  "
            f"p99 {percentile(periods_ms, 0.99):.0f}"
            f"  max {max(periods_ms):.0f}  mean {statistics.mean(periods_ms):.0f}"
        )
    for role in ("beat", "worker"):
        if role in cpu_before:
            used = cpu_after[role] - cpu_before[role]
            print(f"CPU {role}: {100 * used / wall_s:.1f} % of one core")
    print(f"meters not connected at the end: {failures}")


if __name__ == "__main__":
    main()
