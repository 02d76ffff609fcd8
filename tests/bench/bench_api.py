"""Benchmark: the API's busiest reads and ``/metrics`` on a large site.

Run by hand (not collected by pytest):

    .venv/bin/python tests/bench/bench_api.py [--stations 1000] [--cdrs 1000000] [--runs 30]

Builds a site in a fresh data dir (SQLite + embedded Redis, or DATABASE_URL /
REDIS_URL): 20 zones, N installed stations with two connectors each, all
connected (their connection records in Redis) and half of them charging, and
M charging data records spread over 13 months. Then times, in-process through
Django's test client (the view and its queries, not the network):

- ``GET /api/v2/stations/?limit=1000``, every page;
- ``GET /api/v2/zones/``;
- ``GET /api/v2/transactions/?from=&to=`` (one page of one day, a year ago);
- ``GET /api/v2/site/``;
- ``GET /metrics``.

and prints p50 / p95 / max of each over the runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evce_site.settings")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def build_site(n_stations: int, n_cdrs: int) -> str:
    """The site, and an ebms user's token."""
    from decimal import Decimal

    from rest_framework.authtoken.models import Token

    from apps.accounts.models import Role, User
    from apps.stations.models import Connector, Station, StationState, Transaction
    from apps.stations.presence import ONLINE_SET, connection_key, station_key, sync_client
    from apps.zones.models import Zone

    top = Zone.objects.create(name="Building", max_current_a=Decimal("4000"))
    zones = [
        Zone.objects.create(name=f"Floor {i}", parent=top, max_current_a=Decimal("400"))
        for i in range(19)
    ]
    Station.objects.bulk_create(
        Station(
            identity=f"CP{i:05d}",
            name=f"Bay {i}",
            state=StationState.INSTALLED,
            zone=zones[i % len(zones)],
            vendor="Acme",
            model="Wallbox",
        )
        for i in range(n_stations)
    )
    stations = list(Station.objects.order_by("pk"))
    Connector.objects.bulk_create(
        Connector(station=s, connector_id=c, max_current_a=Decimal("32"))
        for s in stations
        for c in (1, 2)
    )
    now = time.time()
    pipe = sync_client().pipeline(transaction=False)
    for s in stations:
        pipe.hset(
            connection_key(s.identity),
            mapping={"identity": s.identity, "channel": "bench", "last_seen": now},
        )
        pipe.sadd(ONLINE_SET, station_key(s.identity))
    pipe.execute()
    started = datetime.now(UTC) - timedelta(days=395)
    step_s = 395 * 86400 / max(n_cdrs, 1)
    batch: list[Transaction] = []
    for i in range(n_cdrs):
        s = stations[i % len(stations)]
        at = started + timedelta(seconds=i * step_s)
        batch.append(
            Transaction(
                station=s,
                station_identity=s.identity,
                station_name=s.name,
                connector_id=1 + i % 2,
                id_tag=f"TAG{i % 5000}",
                started_at=at,
                stopped_at=at + timedelta(hours=2),
                meter_start_wh=0,
                meter_stop_wh=12000,
                energy_wh=12000,
                charging_duration_s=6000,
                status="Finished",
                tou_energy_wh={"NoPeriod": 12000},
            )
        )
        if len(batch) == 10_000:
            Transaction.objects.bulk_create(batch)
            batch.clear()
    now_dt = datetime.now(UTC)
    batch += [
        Transaction(
            station=s,
            station_identity=s.identity,
            station_name=s.name,
            connector_id=1,
            id_tag="LIVE",
            started_at=now_dt - timedelta(minutes=30),
            status="Charging",
        )
        for s in stations[::2]
    ]
    Transaction.objects.bulk_create(batch)
    user = User.objects.create(username="bms", role=Role.EBMS)
    return Token.objects.create(user=user).key


def timed(client, path: str, runs: int, *, follow_next: bool = False) -> list[float]:
    from urllib.parse import urlsplit

    durations = []
    for _run in range(runs):
        started = time.perf_counter()
        url: str | None = path
        while url:
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code, response.content[:300])
            url = None
            if follow_next:
                following = response.json().get("next")
                if following:
                    parts = urlsplit(following)
                    url = f"{parts.path}?{parts.query}"
        durations.append(time.perf_counter() - started)
    return durations


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stations", type=int, default=1000)
    parser.add_argument("--cdrs", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()

    data_dir = tempfile.mkdtemp(prefix="evce-bench-api-")
    os.environ["EVCE_DATA_DIR"] = data_dir
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client

    from evce_site import embedded_redis

    redis_process = embedded_redis.start(settings.DATA_DIR) if settings.EMBEDDED_REDIS else None
    try:
        call_command("migrate", verbosity=0)
        build_started = time.perf_counter()
        token = build_site(args.stations, args.cdrs)
        print(
            f"site: {args.stations} stations online, {args.cdrs} CDRs, "
            f"built in {time.perf_counter() - build_started:.0f} s "
            f"({settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]})"
        )
        client = Client(HTTP_AUTHORIZATION=f"Token {token}")
        day = (datetime.now(UTC) - timedelta(days=365)).date().isoformat()
        cases = [
            ("GET stations (all pages of 1000)", "/api/v2/stations/?limit=1000", True),
            ("GET zones", "/api/v2/zones/", False),
            (
                "GET transactions?from=&to= (1 page)",
                f"/api/v2/transactions/?from={day}&to={day}",
                False,
            ),
            ("GET site", "/api/v2/site/", False),
            ("GET /metrics", "/metrics", False),
        ]
        for label, path, follow in cases:
            timed(client, path, 2, follow_next=follow)  # warm caches
            runs = timed(client, path, args.runs, follow_next=follow)
            print(
                f"{label:40s} p50 {percentile(runs, 0.5) * 1000:6.1f} ms  "
                f"p95 {percentile(runs, 0.95) * 1000:6.1f} ms  max {max(runs) * 1000:6.1f} ms"
            )
    finally:
        if redis_process is not None:
            redis_process.terminate()
            redis_process.wait(timeout=10)


if __name__ == "__main__":
    main()
