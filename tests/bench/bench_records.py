"""Benchmark of the sessions page and the CDR export over a million CDRs.

Fills a database of its own (SQLite in a temporary data folder, or a
``evce_bench_records`` PostgreSQL database next to the one ``DATABASE_URL``
names) with 1000 stations in 10 zones, 5000 cards and N charging records
spread over two years (bulk inserts), then prints:

- the server time of ``/transactions/`` (Django's test client, in process:
  no network) per kind of request — first page, ongoing, a station, a zone,
  a card, a month, a page deep in the history through its cursor — with
  p50 / p95 / max, over every kind together too;
- the time to download the CSV export of every CDR through the ASGI handler
  (what daphne runs), the bytes and rows sent, and the peak RSS of the
  process doing it next to its RSS before the download (flat memory: the
  two are close whatever the number of rows).

    .venv/bin/python tests/bench/bench_records.py [--rows 1000000] [--repeat 30]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/x .venv/bin/python tests/bench/bench_records.py

Not a test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

BENCH_DB = "evce_bench_records"
STATIONS = 1000
ZONES = 10
CARDS = 5000
ONGOING = 300
T0 = datetime(2024, 1, 1, tzinfo=UTC)
BATCH = 10_000


def _bench_database_url(url: str) -> str:
    """The URL of a fresh PostgreSQL database for the bench, beside ``url``'s."""
    import psycopg

    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {BENCH_DB}")
        connection.execute(f"CREATE DATABASE {BENCH_DB}")
    return urlunsplit(parts._replace(path=f"/{BENCH_DB}"))


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evce_site.settings")
    import django

    django.setup()


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def populate(rows: int) -> None:
    from django.core.management import call_command
    from django.db import connection, transaction

    from apps.rfid.models import Card
    from apps.stations.models import Station, StationState, Transaction
    from apps.zones.models import TouPeriod, Zone

    call_command("migrate", verbosity=0)
    main = Zone.objects.create(name="Main", max_current_a=5000)
    zones = [
        Zone.objects.create(name=f"Level {i}", parent=main, max_current_a=500) for i in range(ZONES)
    ]
    Station.objects.bulk_create(
        Station(
            identity=f"CP{i:04d}",
            name=f"Bay {i}",
            state=StationState.INSTALLED,
            zone=zones[i % ZONES],
        )
        for i in range(STATIONS)
    )
    Card.objects.bulk_create(Card(id_tag=f"TAG{i:05d}", comment=f"Car {i}") for i in range(CARDS))
    for name in ("Peak", "Off-peak"):
        TouPeriod.objects.create(name=name, days=["mon"], max_percent=80)
    stations = list(Station.objects.order_by("id").values_list("id", "identity", "name"))
    cards = dict(Card.objects.values_list("id_tag", "id"))

    table = Transaction._meta.db_table
    columns = [
        "station_id",
        "station_identity",
        "station_name",
        "connector_id",
        "id_tag",
        "card_id",
        "vip",
        "started_at",
        "stopped_at",
        "meter_start_wh",
        "meter_stop_wh",
        "energy_wh",
        "charging_duration_s",
        "stop_reason",
        "status",
        "phases_used",
        "setpoint_a",
        "consumption_a",
        "tou_energy_wh",
        "reservation_id",
        "forced_stop",
    ]
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})"
    step_s = (2 * 365 * 86400) / rows
    rng = random.Random(1)
    started = time.perf_counter()
    for first in range(0, rows, BATCH):
        values = []
        for n in range(first, min(rows, first + BATCH)):
            station_id, identity, name = stations[rng.randrange(STATIONS)]
            tag = f"TAG{rng.randrange(CARDS):05d}"
            start = T0 + timedelta(seconds=n * step_s)
            ongoing = n >= rows - ONGOING
            energy = rng.randrange(1000, 60000)
            peak = energy // 3
            values.append(
                (
                    station_id,
                    identity,
                    name,
                    1 + n % 2,
                    tag,
                    cards[tag],
                    False,
                    start,
                    None if ongoing else start + timedelta(seconds=rng.randrange(600, 36000)),
                    1000 * n,
                    None if ongoing else 1000 * n + energy,
                    energy,
                    rng.randrange(300, 30000),
                    "" if ongoing else "Local",
                    "Charging" if ongoing else "Finished",
                    3,
                    None,
                    None,
                    json.dumps({"NoPeriod": energy - 2 * peak, "Peak": peak, "Off-peak": peak}),
                    None,
                    False,
                )
            )
        with transaction.atomic(), connection.cursor() as cursor:
            # Times as Django stores them (SQLite keeps text: the format must match).
            adapt = connection.ops.adapt_datetimefield_value
            cursor.executemany(
                sql, [(*v[:7], adapt(v[7]), adapt(v[8]) if v[8] else None, *v[9:]) for v in values]
            )
        if first and first % 200_000 == 0:
            print(f"  {first} rows, {time.perf_counter() - started:.0f} s", flush=True)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {table}")
    else:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    print(f"inserted {rows} CDRs in {time.perf_counter() - started:.0f} s", flush=True)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def bench_list(repeat: int) -> None:
    from django.test import Client

    from apps.accounts.models import User
    from apps.stations.cdrs import CdrFilter, transactions_page
    from apps.stations.models import Station, Transaction
    from apps.zones.models import Zone

    user = User.objects.create_user("bench", password="Bench-Password-1!", role="operator")
    client = Client()
    client.force_login(user)
    station = Station.objects.order_by("id")[STATIONS // 2]
    zone = Zone.objects.get(name="Level 3")
    deep = transactions_page(CdrFilter(until=T0 + timedelta(days=200)), size=1).rows[0]
    from apps.stations.cdrs import Cursor

    deep_cursor = Cursor(at=deep.at, id=deep.id).encode()
    requests = {
        "first page": {},
        "ongoing": {"show": "ongoing"},
        "station": {"station": station.pk},
        "zone (100 stations)": {"zone": zone.pk},
        "card": {"card": "TAG01234"},
        "one month": {"from": "2025-02-01", "to": "2025-02-28"},
        "deep page (cursor)": {"older": deep_cursor},
        "zone + month": {"zone": zone.pk, "from": "2025-02-01", "to": "2025-02-28"},
    }
    page2 = transactions_page(CdrFilter(station_ids=frozenset({station.pk}))).older
    if page2 is not None:
        requests["station, page 2"] = {"station": station.pk, "older": page2.encode()}
    print(f"\n/transactions/ over {Transaction.objects.count()} CDRs, {STATIONS} stations")
    print(f"{'request':24} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} rows")
    everything: list[float] = []
    for label, query in requests.items():
        client.get("/transactions/", query)  # warm caches
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            response = client.get("/transactions/", query)
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.content[:500]
        everything += times
        rows = response.content.count(b"</tr>") - 1  # the header's row aside
        print(
            f"{label:24} {statistics.median(times):8.1f} {_percentile(times, 0.95):8.1f} "
            f"{max(times):8.1f} {rows}"
        )
    print(
        f"{'all requests':24} {statistics.median(everything):8.1f} "
        f"{_percentile(everything, 0.95):8.1f} {max(everything):8.1f}"
    )


def bench_export() -> dict:
    """Download every CDR through the ASGI handler; runs in a fresh process."""
    from asgiref.sync import async_to_sync
    from django.test import AsyncClient

    from apps.accounts.models import User

    user = User.objects.get(username="bench")
    client = AsyncClient()
    async_to_sync(client.aforce_login)(user)

    async def warm_up() -> None:  # load what any request loads before measuring memory
        response = await client.get("/transactions/export.csv?from=2024-01-01&to=2024-01-01")
        async for _chunk in response.streaming_content:
            pass

    async_to_sync(warm_up)()
    rss_before = _rss_mb()

    async def download() -> tuple[int, int, float]:
        started = time.perf_counter()
        response = await client.get("/transactions/export.csv")
        first_byte_s = None
        size = lines = 0
        async for chunk in response.streaming_content:
            if first_byte_s is None:
                first_byte_s = time.perf_counter() - started
            size += len(chunk)
            lines += chunk.count(b"\n")
        return size, lines, first_byte_s

    started = time.perf_counter()
    size, lines, first_byte_s = async_to_sync(download)()
    return {
        "seconds": time.perf_counter() - started,
        "first_byte_s": first_byte_s,
        "bytes": size,
        "rows": lines - 1,
        "rss_before_mb": rss_before,
        "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--export-phase", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.export_phase:
        _setup_django()
        print(json.dumps(bench_export()))
        return

    data_dir = Path(tempfile.mkdtemp(prefix="evce-bench-records-"))
    (data_dir / "static").mkdir()
    os.environ["EVCE_DATA_DIR"] = str(data_dir)
    if os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = _bench_database_url(os.environ["DATABASE_URL"])
    _setup_django()
    from django.conf import settings
    from django.db import connection

    from evce_site import embedded_redis

    redis = embedded_redis.start(settings.DATA_DIR) if settings.EMBEDDED_REDIS else None
    try:
        print(f"database: {connection.vendor}, data dir {data_dir}")
        populate(args.rows)
        bench_list(args.repeat)
        connection.close()
        result = subprocess.run(
            [sys.executable, __file__, "--export-phase"],
            env=os.environ.copy(),
            capture_output=True,
            text=True,
            check=True,
        )
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        print(
            f"\nCSV export of {figures['rows']} CDRs (ASGI): {figures['seconds']:.1f} s, "
            f"first byte after {figures['first_byte_s'] * 1000:.0f} ms, "
            f"{figures['bytes'] / 1e6:.0f} MB; RSS {figures['rss_before_mb']:.0f} MB before, "
            f"peak {figures['rss_peak_mb']:.0f} MB"
        )
    finally:
        if redis is not None:
            redis.terminate()
            redis.wait(timeout=10)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
