"""End to end, real OCPP clients over real WebSockets against a running evce: reservations,
card expiry, station key rotation, security-profile upgrade, secrets kept out of the logs,
and the boot's fallback profile sent once.

Services are called from a separate ``manage.py shell`` process, as the admin
or a task would: their commands reach the station through the channel layer.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import websockets

from tests.central_system.ocpp_client import connected
from tests.central_system.test_live import ocpp_url, wait_until
from tests.conftest import free_port
from tests.e2e.stack import Stack, start_stack

pytestmark = pytest.mark.e2e

KEY_K1 = "rotation-station-old-key"
KEY_U1 = "upgrade-station-key-0001"
SETUP = f"""
from datetime import timedelta
from django.utils import timezone
from apps.rfid.models import Card
from apps.stations.models import Connector, Station
from apps.zones.models import Zone

zone = Zone.objects.create(name="Live zone", max_current_a=100)
Card.objects.create(id_tag="CARD-OK", parent_id_tag="FLEET")
Card.objects.create(id_tag="CARD-MATE", parent_id_tag="FLEET")
Card.objects.create(id_tag="CARD-OLD", expires_at=timezone.now() - timedelta(days=1))
Card.objects.create(id_tag="CARD-SOON", expires_at=timezone.now() + timedelta(days=10))
for identity in ["LIVE-R1", "LIVE-B1"]:
    station = Station.objects.create(identity=identity, name=identity, state="installed", zone=zone)
    for number in (1, 2):
        Connector.objects.create(station=station, connector_id=number, max_current_a=32)
for identity, key in [("LIVE-K1", {KEY_K1!r}), ("LIVE-U1", {KEY_U1!r})]:
    station = Station(identity=identity, name=identity, state="installed", zone=zone,
                      security_profile=1)
    station.set_authorization_key(key)
    station.save()
print("ready")
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tls_port = free_port()
    stack = start_stack(
        tmp_path_factory.mktemp("evce-ocpp-complete"),
        demo=False,
        extra_env={
            "EVCE_OCPP_TLS": "1",
            "EVCE_OCPP_TLS_PORT": str(tls_port),
            "EVCE_RESERVATION_CHECK_PERIOD_S": "1",
        },
    )
    stack.tls_port = tls_port
    try:
        done = stack.manage("shell", "-c", SETUP)
        assert "ready" in done.stdout, done.stdout + done.stderr
        yield stack
    finally:
        stack.stop()


async def shell(stack: Stack, code: str) -> str:
    """Run ``code`` in a ``manage.py shell`` (off this loop: the station must keep answering)."""
    done = await asyncio.to_thread(stack.manage, "shell", "-c", code)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def reserve(identity: str, connector_id: int, id_tag: str, seconds: float, **extra) -> str:
    return (
        "from datetime import timedelta; from django.utils import timezone; "
        "from apps.central_system.reservations import reservation_make; "
        "from apps.stations.models import Station; "
        f"r = reservation_make(station=Station.objects.get(identity={identity!r}), "
        f"connector_id={connector_id}, id_tag={id_tag!r}, "
        f"expires_at=timezone.now() + timedelta(seconds={seconds}), **{extra!r}); "
        "print(r.pk, r.status)"
    )


def reservation_status(stack: Stack, reservation_id: int) -> str:
    [(status,)] = stack.query(
        "SELECT status FROM stations_reservation WHERE id = ?", reservation_id
    )
    return status


def test_reservations_made_used_expired_and_cancelled(stack):
    async def scenario():
        async with connected(ocpp_url(stack), "LIVE-R1") as cp:
            assert (await cp.boot()).status == "Accepted"
            c = cp._call
            # Made, then used by a StartTransaction of a card with the reservation's parent.
            made = await shell(stack, reserve("LIVE-R1", 1, "CARD-OK", 600, parent_id_tag="FLEET"))
            used_id, status = made.split()
            assert status == "active"
            [reserve_now] = await cp.wait_for("ReserveNow")
            assert reserve_now["reservation_id"] == int(used_id)
            assert reserve_now["connector_id"] == 1 and reserve_now["id_tag"] == "CARD-OK"
            assert reserve_now["parent_id_tag"] == "FLEET"
            await cp.call(c.StatusNotification(1, "NoError", "Reserved"))
            started = await cp.call(
                c.StartTransaction(
                    connector_id=1,
                    id_tag="CARD-MATE",
                    meter_start=0,
                    timestamp=datetime.now(UTC).isoformat(),
                    reservation_id=int(used_id),
                )
            )
            assert started.id_tag_info["status"] == "Accepted"
            # Expired: held for two seconds only.
            expiring_id, status = (await shell(stack, reserve("LIVE-R1", 2, "CARD-OK", 2))).split()
            assert status == "active"
            await wait_until(lambda: reservation_status(stack, int(expiring_id)) == "expired", 20)
            # Cancelled.
            cancelled_id, _status = (
                await shell(stack, reserve("LIVE-R1", 0, "CARD-OK", 600))
            ).split()
            await shell(
                stack,
                "from apps.central_system.reservations import reservation_cancel; "
                "from apps.stations.models import Reservation; "
                f"reservation_cancel(reservation=Reservation.objects.get(pk={cancelled_id})); "
                "print('cancelled')",
            )
            [cancel] = await cp.wait_for("CancelReservation")
            return int(used_id), started.transaction_id, int(cancelled_id), cancel

    used_id, transaction_id, cancelled_id, cancel = asyncio.run(scenario())
    [(status, tx)] = stack.query(
        "SELECT status, transaction_id FROM stations_reservation WHERE id = ?", used_id
    )
    assert (status, tx) == ("used", transaction_id)
    assert cancel == {"reservation_id": cancelled_id}
    assert reservation_status(stack, cancelled_id) == "cancelled"
    [(connector_status,)] = stack.query(
        "SELECT c.status FROM stations_connector c JOIN stations_station s "
        "ON c.station_id = s.id WHERE s.identity = 'LIVE-R1' AND c.connector_id = 1"
    )
    assert connector_status == "Reserved"


def test_an_expired_card_is_refused_and_a_card_that_will_expire_says_when(stack):
    async def scenario():
        async with connected(ocpp_url(stack), "LIVE-R1") as cp:
            await cp.boot()
            c = cp._call
            old = await cp.call(c.Authorize(id_tag="CARD-OLD"))
            soon = await cp.call(c.Authorize(id_tag="CARD-SOON"))
            start = await cp.call(
                c.StartTransaction(
                    connector_id=2,
                    id_tag="CARD-OLD",
                    meter_start=0,
                    timestamp=datetime.now(UTC).isoformat(),
                )
            )
            return old.id_tag_info, soon.id_tag_info, start.id_tag_info

    old, soon, start = asyncio.run(scenario())
    assert old["status"] == "Expired" and start["status"] == "Expired"
    assert soon["status"] == "Accepted"
    expiry = datetime.fromisoformat(soon["expiry_date"].replace("Z", "+00:00"))
    assert timedelta(days=9) < expiry - datetime.now(UTC) < timedelta(days=11)


def _status_of(url: str, **kwargs) -> int:
    async def attempt():
        try:
            async with websockets.connect(url, subprotocols=["ocpp1.6"], **kwargs):
                return 101
        except websockets.InvalidStatus as refused:
            return refused.response.status_code

    return asyncio.run(attempt())


def test_a_rotated_key_refuses_the_old_one_and_stays_out_of_the_logs(stack):
    base = f"127.0.0.1:{stack.ocpp_port}/ocpp"

    async def scenario():
        async with connected(f"ws://LIVE-K1:{KEY_K1}@{base}", "LIVE-K1") as cp:
            await cp.boot()
            answer = await shell(
                stack,
                "from apps.central_system.station_security import station_key_rotate; "
                "from apps.stations.models import Station; "
                "print(station_key_rotate(Station.objects.get(identity='LIVE-K1')))",
            )
            changes = await cp.wait_for("ChangeConfiguration", 4)
            [new_key] = [c["value"] for c in changes if c["key"] == "AuthorizationKey"]
            return answer, new_key

    answer, new_key = asyncio.run(scenario())
    assert answer == "Accepted"
    assert 16 <= len(new_key) <= 40
    assert _status_of(f"ws://LIVE-K1:{KEY_K1}@{base}/LIVE-K1") == 401
    assert _status_of(f"ws://LIVE-K1:{new_key}@{base}/LIVE-K1") == 101

    # The OCPP log has the ChangeConfiguration, not the key; neither has a full dump.
    async def log_written():
        return await wait_until(
            lambda: stack.query(
                "SELECT payload FROM stations_ocppmessage WHERE station_identity = 'LIVE-K1' "
                "AND action = 'ChangeConfiguration' AND CAST(payload AS TEXT) LIKE ?",
                "%AuthorizationKey%",
            ),
            20,
        )

    [(payload,)] = asyncio.run(log_written())
    if isinstance(payload, str):  # SQLite gives the text, PostgreSQL the decoded JSON
        payload = json.loads(payload)
    assert payload == {"key": "AuthorizationKey", "value": "[redacted]"}
    [(count,)] = stack.query(
        "SELECT COUNT(*) FROM stations_ocppmessage WHERE CAST(payload AS TEXT) LIKE ?",
        f"%{new_key}%",
    )
    assert count == 0
    dump = stack.manage("dumpdata", timeout_s=120)
    assert dump.returncode == 0, dump.stderr
    assert "station_key_changed" in dump.stdout
    assert new_key not in dump.stdout and new_key.lower() not in dump.stdout


def test_a_profile_upgrade_refuses_a_later_lower_profile_connection(stack):
    base = f"127.0.0.1:{stack.ocpp_port}/ocpp/LIVE-U1"
    cert = Path(stack.env["EVCE_DATA_DIR"]) / "tls" / "ocpp-server.crt"
    context = ssl.create_default_context(cafile=str(cert))
    tls_url = f"wss://LIVE-U1:{KEY_U1}@localhost:{stack.tls_port}/ocpp"

    async def scenario():
        async with connected(
            f"ws://LIVE-U1:{KEY_U1}@127.0.0.1:{stack.ocpp_port}/ocpp", "LIVE-U1"
        ) as cp:
            await cp.boot()
            answer = await shell(
                stack,
                "from apps.central_system.station_security import "
                "station_security_profile_upgrade as upgrade; "
                "from apps.stations.models import Station; "
                "print(upgrade(Station.objects.get(identity='LIVE-U1'), 2))",
            )
            changes = await cp.wait_for("ChangeConfiguration", 4)
            return answer, [c for c in changes if c["key"] == "SecurityProfile"]

    answer, profile_changes = asyncio.run(scenario())
    assert answer == "Accepted" and profile_changes == [{"key": "SecurityProfile", "value": "2"}]
    # Profile 1 (plain ws with the right key) is a downgrade now: refused.
    assert _status_of(f"ws://LIVE-U1:{KEY_U1}@{base}") == 403
    assert _status_of(f"{tls_url}/LIVE-U1", ssl=context) == 101
    [(profile,)] = stack.query(
        "SELECT security_profile FROM stations_station WHERE identity = 'LIVE-U1'"
    )
    assert profile == 2
    [(events,)] = stack.query(
        "SELECT COUNT(*) FROM maintenance_devicelogentry "
        "WHERE event = 'station_security_profile_raised' AND station_identity = 'LIVE-U1'"
    )
    assert events == 1


def _tx_default(received: list[dict]) -> list[int]:
    return [
        p["connector_id"]
        for p in received
        if p["cs_charging_profiles"]["charging_profile_purpose"] == "TxDefaultProfile"
    ]
