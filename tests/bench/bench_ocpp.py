"""OCPP load benchmark: N charging stations against a live evce stack.

Starts the stack the way ``make run`` does (web + OCPP, worker, beat, Redis;
SQLite, or PostgreSQL/Redis when ``DATABASE_URL`` / ``REDIS_URL`` are set),
installs N stations, then runs N OCPP 1.6-J clients in this process: each
boots, starts a session and sends MeterValues every 10 s and a Heartbeat
every 60 s. Prints CALL→CALLRESULT latency (p50/p99), messages per second
and the CPU and RSS of the web (daphne) process.

    .venv/bin/python tests/bench/bench_ocpp.py --stations 1000 --duration 180

Not a test: figures depend on the machine (the clients share its CPUs).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import websockets  # noqa: E402
from ocpp.routing import on  # noqa: E402
from ocpp.v16 import ChargePoint, call, call_result  # noqa: E402

from tests.e2e.stack import start_stack  # noqa: E402

SETUP = """
from apps.stations.models import Connector, Station
from apps.zones.models import Zone
zone, _ = Zone.objects.get_or_create(name="Bench", defaults={"max_current_a": 10000})
stations = Station.objects.bulk_create(
    [Station(identity=f"BENCH{i:04d}", name=f"Bench {i}", state="installed", zone=zone)
     for i in range(COUNT)], ignore_conflicts=True)
stations = Station.objects.filter(identity__startswith="BENCH")
Connector.objects.bulk_create(
    [Connector(station=s, connector_id=1, max_current_a=32) for s in stations],
    ignore_conflicts=True)
print("stations", stations.count())
"""


class Stats:
    def __init__(self) -> None:
        self.latencies_s: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.frames = 0
        self.server_calls = 0
        self.measuring = False
        self.ready = 0  # stations through boot and session start
        self.setup_s: list[float] = []
        self.window_s: list[float] = []

    def add(self, action: str, seconds: float) -> None:
        if self.measuring:
            self.latencies_s[action].append(seconds)
            self.window_s.append(seconds)
            self.frames += 2


class BenchStation(ChargePoint):
    def __init__(self, identity: str, connection, stats: Stats) -> None:
        super().__init__(identity, connection, response_timeout=60)
        self.stats = stats
        self.energy_wh = random.randint(0, 1_000_000)

    def _served(self) -> None:
        if self.stats.measuring:
            self.stats.server_calls += 1
            self.stats.frames += 2

    @on("ChangeConfiguration", skip_schema_validation=True)
    def on_change_configuration(self, **_):
        self._served()
        return call_result.ChangeConfiguration(status="Accepted")

    @on("SetChargingProfile", skip_schema_validation=True)
    def on_set_charging_profile(self, **_):
        self._served()
        return call_result.SetChargingProfile(status="Accepted")

    @on("ClearChargingProfile", skip_schema_validation=True)
    def on_clear_charging_profile(self, **_):
        self._served()
        return call_result.ClearChargingProfile(status="Accepted")

    @on("TriggerMessage", skip_schema_validation=True)
    def on_trigger_message(self, **_):
        self._served()
        return call_result.TriggerMessage(status="Accepted")

    @on("GetConfiguration", skip_schema_validation=True)
    def on_get_configuration(self, **_):
        self._served()
        return call_result.GetConfiguration(configuration_key=[])

    async def timed(self, payload):
        started = time.perf_counter()
        try:
            result = await self.call(payload, skip_schema_validation=True)
        except Exception as exc:
            self.stats.errors[f"{type(payload).__name__}: {type(exc).__name__}"] += 1
            return None
        self.stats.add(type(payload).__name__, time.perf_counter() - started)
        return result

    def meter_value(self) -> list[dict]:
        amps = round(random.uniform(6, 32), 1)
        self.energy_wh += int(amps * 230 * 3 * 10 / 3600)
        now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        values = [
            {"measurand": "Current.Import", "phase": p, "unit": "A", "value": str(amps)}
            for p in ("L1", "L2", "L3")
        ]
        values += [
            {"measurand": "Power.Active.Import", "unit": "W", "value": str(amps * 230 * 3)},
            {
                "measurand": "Energy.Active.Import.Register",
                "unit": "Wh",
                "value": str(self.energy_wh),
            },
            {"measurand": "Current.Offered", "unit": "A", "value": "32"},
        ]
        return [{"timestamp": now, "sampledValue": values}]


async def run_station(identity: str, url: str, stats: Stats, args, stop: asyncio.Event) -> None:
    await asyncio.sleep(random.uniform(0, args.ramp))
    setup_started = time.perf_counter()
    try:
        async with websockets.connect(
            f"{url}/{identity}", subprotocols=["ocpp1.6"], open_timeout=60, ping_interval=None
        ) as connection:
            station = BenchStation(identity, connection, stats)
            runner = asyncio.create_task(station.start())
            await station.timed(
                call.BootNotification(charge_point_model="Bench", charge_point_vendor="evce")
            )
            await station.timed(call.StatusNotification(1, "NoError", "Preparing"))
            started = await station.timed(
                call.StartTransaction(
                    connector_id=1,
                    id_tag="BENCHTAG",
                    meter_start=station.energy_wh,
                    timestamp=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                )
            )
            transaction_id = started.transaction_id if started else None
            await station.timed(call.StatusNotification(1, "NoError", "Charging"))
            stats.setup_s.append(time.perf_counter() - setup_started)
            stats.ready += 1
            next_meter = time.monotonic() + random.uniform(0, args.meter_interval)
            next_heartbeat = time.monotonic() + random.uniform(0, args.heartbeat_interval)
            while not stop.is_set():
                now = time.monotonic()
                if now >= next_meter:
                    next_meter += args.meter_interval
                    await station.timed(
                        call.MeterValues(
                            connector_id=1,
                            transaction_id=transaction_id,
                            meter_value=station.meter_value(),
                        )
                    )
                if now >= next_heartbeat:
                    next_heartbeat += args.heartbeat_interval
                    await station.timed(call.Heartbeat())
                wait_s = max(0.0, min(next_meter, next_heartbeat) - time.monotonic())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait_s)
            runner.cancel()
    except Exception as exc:
        stats.errors[f"connection: {type(exc).__name__}"] += 1


def stack_processes(stack) -> list[psutil.Process]:
    return psutil.Process(stack.process.pid).children(recursive=True)


def web_process(stack) -> psutil.Process:
    for child in psutil.Process(stack.process.pid).children(recursive=True):
        if "daphne" in " ".join(child.cmdline()):
            return child
    raise RuntimeError("no daphne process found")


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def bench(args, url: str, web: psutil.Process | None, others: list[psutil.Process]) -> None:
    stats = Stats()
    stop = asyncio.Event()
    identities = [f"BENCH{i:04d}" for i in range(args.stations)]
    tasks = [asyncio.create_task(run_station(i, url, stats, args, stop)) for i in identities]
    print(f"ramping up {args.stations} stations over {args.ramp:.0f} s ...", flush=True)
    ramp_started = time.monotonic()
    while stats.ready < args.stations and time.monotonic() - ramp_started < args.ramp * 4 + 60:
        await asyncio.sleep(1)
    print(
        f"{stats.ready} stations connected, booted and charging after "
        f"{time.monotonic() - ramp_started:.0f} s (setup per station: p50 "
        f"{percentile(stats.setup_s, 0.5) * 1000:.0f} ms, p99 "
        f"{percentile(stats.setup_s, 0.99) * 1000:.0f} ms); settling 15 s",
        flush=True,
    )
    await asyncio.sleep(15)
    client = psutil.Process()
    client.cpu_percent(None)
    for process in others:
        process.cpu_percent(None)
    if web is not None:
        web.cpu_percent(None)
    stats.measuring = True
    started = time.monotonic()
    cpu_samples, rss_samples, client_cpu, other_cpu = [], [], [], []
    while time.monotonic() - started < args.duration:
        stats.window_s = []
        await asyncio.sleep(5)
        if web is not None:
            cpu_samples.append(web.cpu_percent(None))
            rss_samples.append(web.memory_info().rss)
        client_cpu.append(client.cpu_percent(None))
        other_cpu.append(sum(p.cpu_percent(None) for p in others if p.is_running()))
        print(
            f"  t={time.monotonic() - started:5.0f} s  calls={len(stats.window_s):5d}  "
            f"p99 {percentile(stats.window_s, 0.99) * 1000:6.1f} ms  "
            f"web CPU {cpu_samples[-1] if cpu_samples else 0:3.0f} %  "
            f"rest of evce {other_cpu[-1]:3.0f} %",
            flush=True,
        )
    elapsed = time.monotonic() - started
    stats.measuring = False
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)

    everything = [s for values in stats.latencies_s.values() for s in values]
    print(f"\n== {args.stations} stations, {elapsed:.0f} s measured ==")
    if everything:
        print(
            f"CALL→CALLRESULT latency: p50 {percentile(everything, 0.5) * 1000:.1f} ms, "
            f"p99 {percentile(everything, 0.99) * 1000:.1f} ms, "
            f"max {max(everything) * 1000:.1f} ms ({len(everything)} calls)"
        )
        for action, values in sorted(stats.latencies_s.items()):
            print(
                f"  {action:18s} n={len(values):6d}  p50 {percentile(values, 0.5) * 1000:7.1f} ms"
                f"  p99 {percentile(values, 0.99) * 1000:7.1f} ms"
            )
    print(
        f"station CALLs/s: {len(everything) / elapsed:.1f}; evce CALLs/s: "
        f"{stats.server_calls / elapsed:.1f}; frames/s: {stats.frames / elapsed:.1f}"
    )
    if cpu_samples:
        print(
            f"web process: CPU mean {statistics.mean(cpu_samples):.0f} % "
            f"(max {max(cpu_samples):.0f} %), RSS max {max(rss_samples) / 2**20:.0f} MiB"
        )
    print(
        f"rest of evce (worker, beat, Redis): CPU mean {statistics.mean(other_cpu):.0f} %; "
        f"benchmark clients (same machine): CPU mean {statistics.mean(client_cpu):.0f} %"
    )
    if stats.errors:
        print("errors:", dict(stats.errors))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=int, default=250)
    parser.add_argument("--duration", type=float, default=180.0, help="measured seconds")
    parser.add_argument("--ramp", type=float, default=None, help="connection ramp (s)")
    parser.add_argument("--meter-interval", type=float, default=10.0)
    parser.add_argument("--heartbeat-interval", type=float, default=60.0)
    parser.add_argument("--log", help="copy the stack's log to this file at the end")
    parser.add_argument("--data-dir", help="keep the stack's data here (default: temporary)")
    args = parser.parse_args()
    if args.ramp is None:
        args.ramp = max(10.0, args.stations / 25)
    with tempfile.TemporaryDirectory(prefix="evce-bench-") as scratch:
        data_dir = Path(args.data_dir or scratch)
        data_dir.mkdir(parents=True, exist_ok=True)
        stack = start_stack(data_dir, demo=False)
        try:
            done = stack.manage(
                "shell", "-c", SETUP.replace("COUNT", str(args.stations)), timeout_s=300
            )
            print(done.stdout.strip() or done.stderr, flush=True)
            url = f"ws://127.0.0.1:{stack.ocpp_port}/ocpp"
            web = web_process(stack)
            others = [p for p in stack_processes(stack) if p.pid != web.pid]
            asyncio.run(bench(args, url, web, others))
        finally:
            stack.stop()
            errors = stack.log().count(" ERROR ")
            print(f"stack log: {errors} ERROR lines")
            if args.log:
                shutil.copy(stack.log_path, args.log)


if __name__ == "__main__":
    main()
