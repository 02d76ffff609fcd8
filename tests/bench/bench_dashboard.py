"""Benchmark: server time of the dashboard pages on a large site, and the OCPP log's CSV.

Run by hand (not collected by pytest):

    .venv/bin/python tests/bench/bench_dashboard.py [--stations 1000] [--log-rows 1000000]

In a fresh data folder (SQLite and the embedded Redis, or DATABASE_URL /
REDIS_URL), it builds 20 zones on 3 levels, N installed stations with two
connectors each, a session with a live setpoint on every other station, and
one station whose OCPP log holds ``--log-rows`` frames. It then renders, through
Django's request handling with a logged-in operator, and prints p50 / p95 of:

- ``/`` (global view), ``/zones/<id>/`` (the top zone: every station below it),
- ``/stations/<id>/`` on the busy station: its first log page, a page from the
  middle of the log (keyset cursor), and a page filtered by action;

and the full CSV download of that station's log (rows per second, peak RSS
before and after: the download is streamed, so memory should stay flat).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evce_site.settings")

BUSY = "BUSY-1"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_site(stations: int, log_rows: int) -> dict:
    from decimal import Decimal

    from django.utils import timezone

    from apps.accounts.models import User
    from apps.energy import state
    from apps.stations.models import Connector, OcppMessage, Station, Transaction
    from apps.zones.models import Zone

    top = Zone.objects.create(name="Site", max_current_a=4000)
    level2 = [
        Zone.objects.create(name=f"Building {i}", parent=top, max_current_a=1000) for i in range(4)
    ]
    terminals = [
        Zone.objects.create(name=f"Floor {i}", parent=level2[i % 4], max_current_a=400)
        for i in range(15)
    ]
    Station.objects.bulk_create(
        [
            Station(
                identity=BUSY if n == 0 else f"ST-{n:05d}",
                name=f"Station {n}",
                state="installed",
                zone=terminals[n % len(terminals)],
            )
            for n in range(stations)
        ]
    )
    all_stations = list(Station.objects.order_by("pk"))
    Connector.objects.bulk_create(
        [
            Connector(
                station=station, connector_id=c, max_current_a=Decimal(32), status="Available"
            )
            for station in all_stations
            for c in (1, 2)
        ]
    )
    now = timezone.now()
    sessions = Transaction.objects.bulk_create(
        [
            Transaction(
                station=station,
                station_identity=station.identity,
                station_name=station.name,
                connector_id=1,
                id_tag=f"TAG{n}",
                started_at=now - timedelta(minutes=n % 300),
                energy_wh=1000 * (n % 40),
            )
            for n, station in enumerate(all_stations[::2])
        ]
    )
    Connector.objects.filter(station__in=all_stations[::2], connector_id=1).update(
        status="Charging", status_at=now
    )
    state.redis_client().hset(
        state.SESSIONS,
        mapping={
            f"{tx.station_identity}/1": json.dumps(
                {
                    "transaction_id": tx.pk,
                    "station_id": tx.station_id,
                    "setpoint_a": 16.0,
                    "reason": "zone_limit",
                    "limiting_zone_id": top.pk,
                    "limiting_phase": 2,
                    "phases": [1, 2, 3],
                }
            )
            for tx in sessions
        },
    )
    start = now - timedelta(seconds=log_rows)
    batch = 50_000
    for offset in range(0, log_rows, batch):
        OcppMessage.objects.bulk_create(
            [
                OcppMessage(
                    station_identity=BUSY,
                    at=start + timedelta(seconds=n),
                    direction="in" if n % 2 else "out",
                    message_type=2,
                    unique_id=f"m{n}",
                    action="MeterValues" if n % 10 else "Heartbeat",
                    payload={"connectorId": 1, "n": n},
                )
                for n in range(offset, min(offset + batch, log_rows))
            ]
        )
    user = User.objects.create_user(username="bench", password="x", role="operator")
    return {"top": top, "user": user, "middle_at": start + timedelta(seconds=log_rows // 2)}


def time_pages(client, urls: dict[str, str], runs: int) -> None:
    for name, url in urls.items():
        client.get(url)  # warm
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            response = client.get(url)
            times.append(1000 * (time.perf_counter() - started))
            assert response.status_code == 200, (url, response.status_code)
        print(
            f"  {name:<34} p50 {statistics.median(times):7.1f} ms   "
            f"p95 {percentile(times, 0.95):7.1f} ms"
        )


async def download_csv(user, url: str) -> tuple[int, int, float]:
    from django.test import AsyncClient

    client = AsyncClient()
    await client.aforce_login(user)
    started = time.perf_counter()
    response = await client.get(url)
    assert response.status_code == 200
    size = lines = 0
    async for chunk in response.streaming_content:
        size += len(chunk)
        lines += chunk.count(b"\n")
    return size, lines, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stations", type=int, default=1000)
    parser.add_argument("--log-rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="evce-bench-dashboard-"))
    os.environ.setdefault("EVCE_DATA_DIR", str(data_dir))

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client

    from evce_site import embedded_redis

    redis_process = embedded_redis.start(settings.DATA_DIR) if settings.EMBEDDED_REDIS else None
    try:
        call_command("migrate", verbosity=0)
        started = time.perf_counter()
        site = build_site(args.stations, args.log_rows)
        print(
            f"{args.stations} stations, {args.stations // 2 + args.stations % 2} sessions, "
            f"{args.log_rows} OCPP log rows on {BUSY} "
            f"(built in {time.perf_counter() - started:.0f} s, "
            f"{settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]})"
        )
        from apps.stations.selectors import LogCursor, OcppLogFilter, ocpp_log_page

        middle = ocpp_log_page(BUSY, OcppLogFilter(until=site["middle_at"]), size=1).rows[0]
        cursor = LogCursor(at=middle.at, id=middle.pk).token()
        client = Client()
        client.force_login(site["user"])
        time_pages(
            client,
            {
                "/": "/",
                "/zones/<top>/": f"/zones/{site['top'].pk}/",
                "/stations/<busy>/": f"/stations/{BUSY}/",
                "/stations/<busy>/ (middle of log)": f"/stations/{BUSY}/?after={cursor}",
                "/stations/<busy>/?action=Heartbeat": f"/stations/{BUSY}/?action=Heartbeat",
            },
            args.runs,
        )
        before_mb = peak_rss_mb()
        size, lines, elapsed_s = asyncio.run(
            download_csv(site["user"], f"/stations/{BUSY}/log.csv")
        )
        print(
            f"  log.csv: {lines - 1} rows, {size / 1e6:.1f} MB in {elapsed_s:.1f} s "
            f"({(lines - 1) / elapsed_s:,.0f} rows/s); peak RSS {before_mb:.0f} MB before, "
            f"{peak_rss_mb():.0f} MB after"
        )
    finally:
        if redis_process is not None:
            redis_process.terminate()


if __name__ == "__main__":
    main()
